// VectorIndex: exact search equals a brute-force cosine ranking; HNSW and IVF
// recall@10 against exact; removal (HNSW tombstones) and save/load round trips.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <numeric>

#include "index/vector_index.h"
#include "mmfuse/error.h"
#include "tools/ann_bench.h"

namespace mmfuse {
namespace {

std::vector<int64_t> iota_ids(size_t n, int64_t first = 0) {
  std::vector<int64_t> ids(n);
  std::iota(ids.begin(), ids.end(), first);
  return ids;
}

TEST(IndexVectors, FlatEqualsBruteForceCosine) {
  const size_t n = 3000, d = 64, nq = 25, k = 10;
  auto data = random_unit_vectors(n, d, 1);
  auto queries = random_unit_vectors(nq, d, 2);
  auto ids = iota_ids(n, 100);
  IndexParams p;
  VectorIndex index = VectorIndex::build(static_cast<int>(d), p, ids.data(), data.data(), n, 2);
  auto hits = index.search(queries.data(), nq, k, 2);
  for (size_t q = 0; q < nq; ++q) {
    std::vector<std::pair<double, int64_t>> all;
    for (size_t i = 0; i < n; ++i) {
      double dot = 0;
      for (size_t j = 0; j < d; ++j)
        dot += static_cast<double>(queries[q * d + j]) * data[i * d + j];
      all.push_back({dot, ids[i]});
    }
    std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.first > b.first; });
    ASSERT_EQ(hits[q].size(), k);
    for (size_t j = 0; j < k; ++j) {
      EXPECT_EQ(hits[q][j].id, all[j].second) << "query " << q << " rank " << j;
      EXPECT_NEAR(hits[q][j].score, all[j].first, 1e-5);
    }
  }
}

// 5 000 vectors keep the unit tests fast on 2 shared cores (an HNSW build is
// the slow part); bench/index_bench.sh measures 100 000 and 1 000 000 vectors.
TEST(IndexVectors, HnswRecallAt10) {
  const size_t n = 5000, d = 512, nq = 200, k = 10;
  auto data = random_unit_vectors(n, d, 3);
  auto queries = random_unit_vectors(nq, d, 4);
  auto ids = iota_ids(n);
  IndexParams p;
  auto exact =
      VectorIndex::build(512, p, ids.data(), data.data(), n, 2).search(queries.data(), nq, k, 2);
  p.kind = IndexKind::hnsw;
  VectorIndex hnsw = VectorIndex::build(512, p, ids.data(), data.data(), n, 2);
  const double recall = recall_at_k(hnsw.search(queries.data(), nq, k, 2), exact, k);
  RecordProperty("recall_at_10", std::to_string(recall));
  EXPECT_GE(recall, 0.95);
}

// IVF with its default nprobe (default_nprobe: nlist/8 here) on embedding-like (clustered) vectors.
// On random vectors IVF must visit nearly every cell (tests/slow and the bench
// have the sweep), which says nothing about its cells.
TEST(IndexVectors, IvfRecallAt10) {
  const size_t n = 5000, d = 512, nq = 200, k = 10;
  ClusteredDataShape shape;
  shape.clusters = 50;  // ~100 points per cluster, as in the 100k/1M bench sets
  auto data = clustered_unit_vectors(n, d, shape, 5, 6);
  auto queries = clustered_unit_vectors(nq, d, shape, 5, 7);
  auto ids = iota_ids(n);
  IndexParams p;
  auto exact =
      VectorIndex::build(512, p, ids.data(), data.data(), n, 2).search(queries.data(), nq, k, 2);
  p.kind = IndexKind::ivf;
  VectorIndex ivf = VectorIndex::build(512, p, ids.data(), data.data(), n, 2);
  EXPECT_EQ(ivf.params().ivf_nprobe, ivf.params().ivf_nlist / 8);
  EXPECT_EQ(default_nprobe(4), 1u);
  EXPECT_EQ(default_nprobe(800), 100u);
  EXPECT_EQ(default_nprobe(5656), 128u);
  std::vector<std::vector<SearchHit>> found(nq);
  for (size_t q = 0; q < nq; ++q) found[q] = ivf.search(queries.data() + q * d, 1, k, 1)[0];
  const double recall = recall_at_k(found, exact, k);
  RecordProperty("recall_at_10", std::to_string(recall));
  EXPECT_GE(recall, 0.95);
}

// Per-call search settings: a wider HNSW beam or more IVF cells than the
// index's own find more of the true neighbours, and ids stay catalogue ids.
TEST(IndexVectors, PerQueryTuningTradesSpeedForRecall) {
  const size_t n = 5000, d = 128, nq = 100, k = 10;
  auto data = random_unit_vectors(n, d, 21);
  auto queries = random_unit_vectors(nq, d, 22);
  auto ids = iota_ids(n, 7000);
  IndexParams p;
  auto exact =
      VectorIndex::build(128, p, ids.data(), data.data(), n, 2).search(queries.data(), nq, k, 2);
  auto recall = [&](const VectorIndex& index, const SearchTuning& tuning) {
    std::vector<std::vector<SearchHit>> found(nq);
    for (size_t q = 0; q < nq; ++q)
      found[q] = index.search(queries.data() + q * d, 1, k, 1, tuning)[0];
    return recall_at_k(found, exact, k);
  };
  p.kind = IndexKind::hnsw;
  p.ef_search = 10;
  const VectorIndex hnsw = VectorIndex::build(128, p, ids.data(), data.data(), n, 2);
  const double narrow = recall(hnsw, {}), wide = recall(hnsw, {.ef_search = 512, .nprobe = 0});
  EXPECT_GT(wide, narrow + 0.1);
  EXPECT_GE(wide, 0.95);
  EXPECT_EQ(hnsw.params().ef_search, 10);  // the call did not change the index
  p.kind = IndexKind::ivf;
  p.ivf_nprobe = 1;
  const VectorIndex ivf = VectorIndex::build(128, p, ids.data(), data.data(), n, 2);
  const double one_cell = recall(ivf, {});
  const double all_cells = recall(ivf, {.ef_search = 0, .nprobe = ivf.params().ivf_nlist});
  EXPECT_GT(all_cells, one_cell + 0.3);
  EXPECT_GE(all_cells, 0.95);
}

TEST(IndexVectors, RemoveAndSaveLoad) {
  const size_t n = 200, d = 16;
  auto data = random_unit_vectors(n, d, 7);
  auto ids = iota_ids(n);
  IndexParams p;
  VectorIndex flat = VectorIndex::build(16, p, ids.data(), data.data(), n, 1);
  EXPECT_TRUE(flat.remove({5, 6}));
  EXPECT_EQ(flat.size(), n - 2);
  auto hits = flat.search(data.data() + 5 * d, 1, 1, 1);
  EXPECT_NE(hits[0][0].id, 5);
  const auto path = std::filesystem::temp_directory_path() /
                    ("mmfuse_vi_" + std::to_string(::getpid()) + ".faiss");
  flat.save(path);
  VectorIndex back = VectorIndex::load(path, p);
  std::filesystem::remove(path);
  EXPECT_EQ(back.size(), n - 2);
  EXPECT_EQ(back.search(data.data() + 7 * d, 1, 1, 1)[0][0].id, 7);
}

// HNSW removal leaves tombstones: removed ids are never returned, every query
// still gets k live hits, the tombstones survive save/load, re-adding an id
// works, and past kMaxTombstoneFraction remove() refuses so the store rebuilds.
TEST(IndexVectors, HnswRemovesWithTombstones) {
  const size_t n = 3000, d = 64, k = 10;
  auto data = random_unit_vectors(n, d, 11);
  auto ids = iota_ids(n, 1000);
  IndexParams p;
  p.kind = IndexKind::hnsw;
  VectorIndex hnsw = VectorIndex::build(64, p, ids.data(), data.data(), n, 2);
  // Remove every 20th id (5%), plus an unknown id and a duplicate.
  std::vector<int64_t> gone;
  for (size_t i = 0; i < n; i += 20) gone.push_back(ids[i]);
  std::vector<int64_t> request = gone;
  request.push_back(999999);
  request.push_back(gone[0]);
  ASSERT_TRUE(hnsw.remove(request));
  EXPECT_EQ(hnsw.tombstones(), gone.size());
  EXPECT_EQ(hnsw.size(), n - gone.size());

  // The exact answer over the live vectors only.
  std::vector<int64_t> live_ids;
  std::vector<float> live;
  for (size_t i = 0; i < n; ++i) {
    if (i % 20 == 0) continue;
    live_ids.push_back(ids[i]);
    live.insert(live.end(), data.begin() + i * d, data.begin() + (i + 1) * d);
  }
  auto exact =
      VectorIndex::build(64, IndexParams{}, live_ids.data(), live.data(), live_ids.size(), 2);
  // Query with the removed vectors themselves: each is its own nearest
  // neighbour, so a leaked tombstone would show up first.
  std::vector<float> queries;
  for (size_t i = 0; i < n; i += 20)
    queries.insert(queries.end(), data.begin() + i * d, data.begin() + (i + 1) * d);
  const size_t nq = gone.size();
  auto check = [&](const VectorIndex& index, const char* what) {
    const auto got = index.search(queries.data(), nq, k, 2);
    for (const auto& hits : got) {
      ASSERT_EQ(hits.size(), k) << what;
      for (const auto& h : hits)
        EXPECT_EQ(std::count(gone.begin(), gone.end(), h.id), 0) << what << ": returned " << h.id;
    }
    const double recall = recall_at_k(got, exact.search(queries.data(), nq, k, 2), k);
    EXPECT_GE(recall, 0.9) << what;
  };
  check(hnsw, "after remove");

  const auto path = std::filesystem::temp_directory_path() /
                    ("mmfuse_hnsw_" + std::to_string(::getpid()) + ".faiss");
  hnsw.save(path);
  VectorIndex back = VectorIndex::load(path, p);
  std::filesystem::remove(path);
  EXPECT_EQ(back.tombstones(), gone.size());
  EXPECT_EQ(back.size(), n - gone.size());
  check(back, "after load");

  // A removed id can come back (SQLite may reuse a row id).
  back.add(&gone[0], data.data(), 1, 1);
  EXPECT_EQ(back.size(), n - gone.size() + 1);
  EXPECT_EQ(back.search(data.data(), 1, 1, 1)[0][0].id, gone[0]);

  // 5% dead now; another 6% would pass the 10% line: refused, nothing changed.
  std::vector<int64_t> more;
  for (size_t i = 1; i < n && more.size() < n * 6 / 100; i += 3) more.push_back(ids[i]);
  EXPECT_FALSE(back.remove(more));
  EXPECT_EQ(back.size(), n - gone.size() + 1);
  EXPECT_EQ(back.search(data.data() + 1 * d, 1, 1, 1)[0][0].id, ids[1]);
  EXPECT_TRUE(back.remove({}));
}

TEST(IndexVectors, KindNames) {
  EXPECT_EQ(parse_index_kind("hnsw", "x"), IndexKind::hnsw);
  EXPECT_THROW(parse_index_kind("lsh", "x"), Error);
  EXPECT_EQ(auto_index_kind(10), IndexKind::flat);
  EXPECT_EQ(auto_index_kind(49999), IndexKind::flat);
  EXPECT_EQ(auto_index_kind(50000), IndexKind::hnsw);
  EXPECT_EQ(auto_index_kind(1000000), IndexKind::hnsw);
  EXPECT_EQ(auto_index_kind(2000000), IndexKind::ivf);
  // Growing switches at the line; shrinking only 20% below it.
  EXPECT_EQ(auto_index_kind(60000, IndexKind::flat), IndexKind::hnsw);
  EXPECT_EQ(auto_index_kind(45000, IndexKind::hnsw), IndexKind::hnsw);
  EXPECT_EQ(auto_index_kind(39999, IndexKind::hnsw), IndexKind::flat);
  EXPECT_EQ(auto_index_kind(1700000, IndexKind::ivf), IndexKind::ivf);
  EXPECT_EQ(auto_index_kind(1500000, IndexKind::ivf), IndexKind::hnsw);
  EXPECT_EQ(auto_index_kind(30000, IndexKind::ivf), IndexKind::flat);
  EXPECT_EQ(auto_index_kind(100, IndexKind::hnsw), IndexKind::flat);
}

// `index bench --remove`: 5% removed stays in place as tombstones, 20% rebuilds;
// recall is measured against exact search of what is left.
TEST(IndexBench, RemoveMeasuresTombstonesAndRebuilds) {
  AnnBenchOptions o;
  o.vectors = 3000;
  o.dim = 32;
  o.queries = 50;
  o.kinds = {"flat", "hnsw"};
  o.ef_search = {64};
  o.remove_fraction = 0.05;
  auto r = run_ann_bench(o);
  ASSERT_EQ(r["results"].size(), 2u);
  for (const auto& row : r["results"]) {
    EXPECT_EQ(row["removed"], 150);
    EXPECT_EQ(row["removal"], "in place");
    EXPECT_GE(row["recall_at_k"].get<double>(), 0.9) << row.dump();
  }
  EXPECT_EQ(r["results"][0]["recall_at_k"], 1.0);  // flat: exact
  EXPECT_EQ(r["results"][1]["tombstones"], 150);
  o.kinds = {"hnsw"};
  o.remove_fraction = 0.2;
  r = run_ann_bench(o);
  EXPECT_EQ(r["results"][0]["removal"], "rebuild");
  EXPECT_EQ(r["results"][0]["tombstones"], 0);
  EXPECT_GE(r["results"][0]["recall_at_k"].get<double>(), 0.9);
  o.remove_fraction = 1.5;
  EXPECT_THROW(run_ann_bench(o), Error);
}

}  // namespace
}  // namespace mmfuse
