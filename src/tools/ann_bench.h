// Benchmark of the index kinds on synthetic unit vectors: build time, memory,
// single-query latency (p50/p99) and recall@k against exact search.
//
// Two data sets: "random" (uniform on the sphere: no structure at all, the
// worst case for graph and cell indexes) and "clustered" (embedding-like:
// points around cluster centres in a low-dimensional subspace plus isotropic
// noise, the shape real CLIP/BERT embedding collections have).
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "index/vector_index.h"

namespace mmfuse {

struct ClusteredDataShape {
  size_t clusters = 1000;       // cluster centres
  size_t latent_dim = 64;       // dimension of the subspace the centres and spreads live in
  float cluster_spread = 1.0f;  // spread around a centre, per latent axis (centres: 1.0)
  float noise = 0.1f;           // isotropic noise per axis of the full space (signal: ~1.1)
};

struct AnnBenchOptions {
  size_t vectors = 100000, dim = 512, queries = 1000, top_k = 10;
  std::string data = "random";       // or "clustered", or "index" (see index_dir)
  std::string index_dir;             // data = "index": the cached embeddings of this folder's
  std::string index_type = "image";  // items of this type; `queries` of them held out
  ClusteredDataShape clustered;
  std::vector<std::string> kinds = {"flat", "hnsw"};
  IndexParams params;
  std::vector<int> ef_search = {128, 256, 512};
  std::vector<int> nprobe = {16, 64};
  uint64_t seed = 42;
  int threads = 1;
  // Share of the vectors removed after each build (chosen at random, seeded),
  // to measure removal (HNSW: tombstones, or a rebuild past 10%) and search
  // over what is left; recall is then against exact search of the rest.
  double remove_fraction = 0.0;
};

// n random unit vectors (n * dim floats), deterministic for a seed.
std::vector<float> random_unit_vectors(size_t n, size_t dim, uint64_t seed);

// n embedding-like unit vectors: the centres and the subspace depend on
// `shape_seed` alone, the points on `point_seed`, so a data set and its
// queries share one shape.
std::vector<float> clustered_unit_vectors(size_t n, size_t dim, const ClusteredDataShape& shape,
                                          uint64_t shape_seed, uint64_t point_seed);

// The cached embeddings of an index folder's `type` items, split at random
// (seeded) into `queries` held-out queries and the rest as the data set: how the
// kinds would do on a user's own collection. Throws Error(bad_input) when the
// folder holds too few items.
struct VectorSet {
  size_t dim = 0;
  std::vector<float> data, queries;  // row-major, unit length
};
VectorSet index_folder_vectors(const std::string& dir, const std::string& type, size_t queries,
                               uint64_t seed);

// Mean over queries of |approx top-k ∩ exact top-k| / k.
double recall_at_k(const std::vector<std::vector<SearchHit>>& approx,
                   const std::vector<std::vector<SearchHit>>& exact, size_t k);

// {"vectors", "dim", "threads", "results": [{"kind", "build_s", "memory_mb", "p50_ms", "p99_ms",
// "recall_at_k", ...}]}; with remove_fraction, each result also has "removed",
// "remove_s" and "removal" ("in place" or "rebuild").
nlohmann::ordered_json run_ann_bench(const AnnBenchOptions& options);

}  // namespace mmfuse
