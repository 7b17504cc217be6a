// FAISS parts with mmfuse's kernels: the vectorised dot products, single-query
// exact search against a brute-force ranking, IVF-SQ8 scores against FAISS's
// own scanner, and the swap after read_index.
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/index_io.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <numeric>
#include <random>

#include "core/ops.h"
#include "index/faiss_kernels.h"
#include "tools/ann_bench.h"

namespace mmfuse {
namespace {

TEST(FlatIPStorage, DotMatchesADoublePrecisionSum) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (size_t n : {0, 1, 7, 31, 32, 33, 100, 512, 768, 1000}) {
    std::vector<float> a(n), b(n);
    for (size_t i = 0; i < n; ++i) a[i] = u(rng), b[i] = u(rng);
    double want = 0;
    for (size_t i = 0; i < n; ++i) want += static_cast<double>(a[i]) * b[i];
    EXPECT_NEAR(kernels::dot(a.data(), b.data(), n), want, 1e-5 * (1.0 + std::sqrt(n))) << n;
  }
}

TEST(FlatIPStorage, ByteDotMatchesADoublePrecisionSum) {
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (size_t n : {0, 5, 32, 65, 512}) {
    std::vector<float> a(n);
    std::vector<uint8_t> b(n);
    double want = 0;
    for (size_t i = 0; i < n; ++i) {
      a[i] = u(rng);
      b[i] = static_cast<uint8_t>(rng() % 256);
      want += static_cast<double>(a[i]) * b[i];
    }
    EXPECT_NEAR(kernels::dot_u8(a.data(), b.data(), n), want, 1e-3 * (1.0 + std::sqrt(n))) << n;
  }
}

TEST(FlatIPStorage, SingleQueriesRankLikeBruteForce) {
  const size_t n = 2000, d = 96, k = 10;
  auto data = random_unit_vectors(n, d, 11);
  auto queries = random_unit_vectors(5, d, 12);
  FlatIPStorage storage(d);
  storage.add(n, data.data());
  // Three queries at once (under FAISS's BLAS batch), then one at a time.
  std::vector<float> scores(3 * k);
  std::vector<faiss::Index::idx_t> labels(3 * k);
  storage.search(3, queries.data(), k, scores.data(), labels.data());
  for (size_t q = 0; q < 3; ++q) {
    std::vector<std::pair<double, int64_t>> all;
    for (size_t i = 0; i < n; ++i) {
      double dot = 0;
      for (size_t j = 0; j < d; ++j)
        dot += static_cast<double>(queries[q * d + j]) * data[i * d + j];
      all.push_back({dot, static_cast<int64_t>(i)});
    }
    std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.first > b.first; });
    for (size_t j = 0; j < k; ++j) {
      EXPECT_EQ(labels[q * k + j], all[j].second) << "query " << q << " rank " << j;
      EXPECT_NEAR(scores[q * k + j], all[j].first, 1e-5);
    }
  }
  // More results asked than vectors held: the tail is empty (-1).
  FlatIPStorage small(d);
  small.add(3, data.data());
  storage.search(1, queries.data(), k, scores.data(), labels.data());
  small.search(1, queries.data(), k, scores.data(), labels.data());
  EXPECT_GE(labels[2], 0);
  EXPECT_EQ(labels[3], -1);
}

TEST(FlatIPStorage, LoadedFlatAndHnswIndexesUseIt) {
  const size_t n = 500, d = 32;
  auto data = random_unit_vectors(n, d, 13);
  std::vector<faiss::Index::idx_t> ids(n);
  std::iota(ids.begin(), ids.end(), 1000);
  const auto path = std::filesystem::temp_directory_path() /
                    ("mmfuse_flat_ip_" + std::to_string(::getpid()) + ".faiss");

  auto* hnsw = new faiss::IndexHNSWFlat(d, 16, faiss::METRIC_INNER_PRODUCT);
  faiss::IndexIDMap2 hnsw_map(hnsw);
  hnsw_map.own_fields = true;
  faiss::IndexIDMap2 flat_map(new faiss::IndexFlatIP(d));
  flat_map.own_fields = true;
  for (faiss::IndexIDMap2* map : {&flat_map, &hnsw_map}) {
    map->add_with_ids(n, data.data(), ids.data());
    faiss::write_index(map, path.c_str());
    std::unique_ptr<faiss::Index> back =
        with_fast_kernels(std::unique_ptr<faiss::Index>(faiss::read_index(path.c_str())));
    auto* back_map = dynamic_cast<faiss::IndexIDMap2*>(back.get());
    ASSERT_NE(back_map, nullptr);
    faiss::Index* storage = back_map->index;
    if (auto* h = dynamic_cast<faiss::IndexHNSW*>(storage)) storage = h->storage;
    ASSERT_NE(dynamic_cast<FlatIPStorage*>(storage), nullptr);
    EXPECT_EQ(storage->ntotal, static_cast<faiss::Index::idx_t>(n));
    // Same answers as the index that was written.
    float want_score = 0, got_score = 0;
    faiss::Index::idx_t want_id = -1, got_id = -1;
    map->search(1, data.data() + 42 * d, 1, &want_score, &want_id);
    back->search(1, data.data() + 42 * d, 1, &got_score, &got_id);
    EXPECT_EQ(got_id, 1042);
    EXPECT_EQ(got_id, want_id);
    EXPECT_NEAR(got_score, want_score, 1e-5);
  }
  std::filesystem::remove(path);
}

TEST(IvfSq8IPIndex, ScoresEqualFaissOwnScanner) {
  const size_t n = 4000, d = 64, nq = 5, k = 10, nlist = 40;
  auto data = random_unit_vectors(n, d, 14);
  auto queries = random_unit_vectors(nq, d, 15);
  faiss::IndexFlatIP coarse(d);
  faiss::IndexIVFScalarQuantizer plain(&coarse, d, nlist, faiss::ScalarQuantizer::QT_8bit,
                                       faiss::METRIC_INNER_PRODUCT);
  plain.train(n, data.data());
  plain.add(n, data.data());
  plain.nprobe = 8;
  const auto path = std::filesystem::temp_directory_path() /
                    ("mmfuse_ivf_sq8_" + std::to_string(::getpid()) + ".faiss");
  faiss::write_index(&plain, path.c_str());
  std::unique_ptr<faiss::Index> fast =
      with_fast_kernels(std::unique_ptr<faiss::Index>(faiss::read_index(path.c_str())));
  std::filesystem::remove(path);
  auto* fast_ivf = dynamic_cast<IvfSq8IPIndex*>(fast.get());
  ASSERT_NE(fast_ivf, nullptr);
  ASSERT_NE(dynamic_cast<FlatIPStorage*>(fast_ivf->quantizer), nullptr);
  fast_ivf->nprobe = 8;
  std::vector<float> want(nq * k), got(nq * k);
  std::vector<faiss::Index::idx_t> want_ids(nq * k), got_ids(nq * k);
  for (size_t q = 0; q < nq; ++q) {  // one at a time, as mmfuse searches
    plain.search(1, queries.data() + q * d, k, want.data() + q * k, want_ids.data() + q * k);
    fast->search(1, queries.data() + q * d, k, got.data() + q * k, got_ids.data() + q * k);
  }
  for (size_t i = 0; i < nq * k; ++i) {
    EXPECT_NEAR(got[i], want[i], 1e-4) << i;
    // Ids agree except where two codes score the same within rounding.
    const bool tied = (i % k + 1 < k && std::abs(want[i] - want[i + 1]) < 1e-4) ||
                      (i % k > 0 && std::abs(want[i] - want[i - 1]) < 1e-4);
    if (!tied) {
      EXPECT_EQ(got_ids[i], want_ids[i]) << i;
    }
  }
}

}  // namespace
}  // namespace mmfuse
