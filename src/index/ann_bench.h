// Benchmark of the index kinds on random unit vectors: build time, memory,
// single-query latency (p50/p99) and recall@k against exact search.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "index/vector_index.h"

namespace mmfuse {

struct AnnBenchOptions {
  size_t vectors = 100000, dim = 512, queries = 1000, top_k = 10;
  std::vector<std::string> kinds = {"flat", "hnsw"};
  IndexParams params;
  std::vector<int> ef_search = {128, 256, 512};
  std::vector<int> nprobe = {16, 64};
  uint64_t seed = 42;
  int threads = 1;
};

// n random unit vectors (n * dim floats), deterministic for a seed.
std::vector<float> random_unit_vectors(size_t n, size_t dim, uint64_t seed);

// Mean over queries of |approx top-k ∩ exact top-k| / k.
double recall_at_k(const std::vector<std::vector<SearchHit>>& approx,
                   const std::vector<std::vector<SearchHit>>& exact, size_t k);

// {"vectors", "dim", "threads", "results": [{"kind", "build_s", "memory_mb", "p50_ms", "p99_ms",
// "recall_at_k", ...}]}
nlohmann::ordered_json run_ann_bench(const AnnBenchOptions& options);

}  // namespace mmfuse
