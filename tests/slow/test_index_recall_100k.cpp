// Recall@10 of the approximate index kinds against exact search at the size
// the retrieval issue names: 100 000 512-d unit vectors. Random vectors (no
// structure at all) are HNSW's worst case; embedding-like (clustered) vectors
// are what a photo collection looks like. Release only (ctest label "slow"):
// the HNSW build takes about a minute on two cores, many more under ASan.
#include <gtest/gtest.h>

#include <numeric>

#include "index/vector_index.h"
#include "tools/ann_bench.h"

namespace mmfuse {
namespace {

constexpr size_t n = 100000, dim = 512, queries = 200, k = 10;
constexpr int threads = 2;

std::vector<int64_t> ids_0_to_n() {
  std::vector<int64_t> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  return ids;
}

// Ground truth: exact search, batched.
std::vector<std::vector<SearchHit>> exact_top_k(const std::vector<int64_t>& ids,
                                                const std::vector<float>& data,
                                                const std::vector<float>& q) {
  IndexParams flat;
  return VectorIndex::build(dim, flat, ids.data(), data.data(), n, threads)
      .search(q.data(), queries, k, threads);
}

// One query per call, as `mmfuse search` and the server ask.
double recall_one_by_one(const VectorIndex& index, const std::vector<float>& q,
                         const std::vector<std::vector<SearchHit>>& exact) {
  std::vector<std::vector<SearchHit>> found(queries);
  for (size_t i = 0; i < queries; ++i) found[i] = index.search(q.data() + i * dim, 1, k, 1)[0];
  return recall_at_k(found, exact, k);
}

// On random vectors every point is nearly equidistant from every other, so the
// graph walk needs a wide beam: efSearch 4096 (FAISS's default efConstruction
// of 40 keeps the build to about a minute). docs/retrieval.md has the sweep.
TEST(IndexRecall100k, HnswOnRandomVectors) {
  const auto ids = ids_0_to_n();
  const auto data = random_unit_vectors(n, dim, 101);
  const auto q = random_unit_vectors(queries, dim, 102);
  const auto exact = exact_top_k(ids, data, q);
  IndexParams p;
  p.kind = IndexKind::hnsw;
  p.hnsw_m = 32;
  p.ef_construction = 40;
  p.ef_search = 4096;
  const VectorIndex hnsw = VectorIndex::build(dim, p, ids.data(), data.data(), n, threads);
  const double recall = recall_one_by_one(hnsw, q, exact);
  RecordProperty("recall_at_10", std::to_string(recall));
  EXPECT_GE(recall, 0.95);
}

// The defaults `mmfuse index add --kind hnsw|ivf` records, on embedding-like data.
TEST(IndexRecall100k, DefaultHnswAndIvfOnClusteredVectors) {
  const ClusteredDataShape shape;
  const auto ids = ids_0_to_n();
  const auto data = clustered_unit_vectors(n, dim, shape, 201, 202);
  const auto q = clustered_unit_vectors(queries, dim, shape, 201, 203);
  const auto exact = exact_top_k(ids, data, q);
  for (IndexKind kind : {IndexKind::ivf, IndexKind::hnsw}) {
    IndexParams p;
    p.kind = kind;
    const VectorIndex index = VectorIndex::build(dim, p, ids.data(), data.data(), n, threads);
    const double recall = recall_one_by_one(index, q, exact);
    RecordProperty(std::string("recall_at_10_") + to_string(kind), std::to_string(recall));
    EXPECT_GE(recall, 0.95) << to_string(kind);
  }
}

}  // namespace
}  // namespace mmfuse
