// run_ann_bench: times the FAISS kinds the way the CLI uses them (one query per call).
#include "tools/ann_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <set>

#include "core/thread_pool.h"
#include "index/index_store.h"
#include "mmfuse/error.h"

namespace mmfuse {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Resident memory of this process in MiB (/proc/self/statm).
double rss_mb() {
  long pages_total = 0, pages_resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) pages_resident = 0;
    std::fclose(f);
  }
  return static_cast<double>(pages_resident) * 4096.0 / (1024.0 * 1024.0);
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t i =
      std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

double round3(double x) {
  return std::round(x * 1000.0) / 1000.0;
}

// round(fraction * count) distinct ids of 0..count-1, chosen at random.
std::vector<int64_t> pick_removed(size_t count, double fraction, uint64_t seed) {
  std::vector<int64_t> order(count);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  order.resize(static_cast<size_t>(std::llround(fraction * static_cast<double>(count))));
  return order;
}

// A new index of the same kind and parameters over the vectors not removed.
VectorIndex rebuild_without(const VectorIndex& index, const std::vector<int64_t>& removed,
                            const std::vector<int64_t>& ids, const std::vector<float>& data,
                            int threads) {
  const size_t dim = static_cast<size_t>(index.dim());
  const std::set<int64_t> gone(removed.begin(), removed.end());
  std::vector<int64_t> kept_ids;
  std::vector<float> kept;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (gone.count(ids[i])) continue;
    kept_ids.push_back(ids[i]);
    kept.insert(kept.end(), data.begin() + static_cast<long>(i * dim),
                data.begin() + static_cast<long>((i + 1) * dim));
  }
  return VectorIndex::build(index.dim(), index.params(), kept_ids.data(), kept.data(),
                            kept_ids.size(), threads);
}

}  // namespace

namespace {

void normalise(float* row, size_t dim) {
  double norm = 0;
  for (size_t j = 0; j < dim; ++j) norm += static_cast<double>(row[j]) * row[j];
  const float inv = static_cast<float>(1.0 / std::sqrt(std::max(norm, 1e-30)));
  for (size_t j = 0; j < dim; ++j) row[j] *= inv;
}

// Row i's generator: rows are filled in parallel, and the result must not
// depend on the thread count.
std::mt19937_64 row_rng(uint64_t seed, size_t row) {
  return std::mt19937_64(seed * 0x9E3779B97F4A7C15ull + row);
}

}  // namespace

std::vector<float> random_unit_vectors(size_t n, size_t dim, uint64_t seed) {
  std::vector<float> v(n * dim);
  ThreadPool pool(0);  // rows are independent: any thread count gives the same data
  pool.parallel_for(n, [&](size_t b, size_t e, int) {
    for (size_t i = b; i < e; ++i) {
      std::mt19937_64 rng = row_rng(seed, i);
      std::normal_distribution<float> normal(0.0f, 1.0f);
      float* row = v.data() + i * dim;
      for (size_t j = 0; j < dim; ++j) row[j] = normal(rng);
      normalise(row, dim);
    }
  });
  return v;
}

std::vector<float> clustered_unit_vectors(size_t n, size_t dim, const ClusteredDataShape& shape,
                                          uint64_t shape_seed, uint64_t point_seed) {
  MMFUSE_CHECK(shape.clusters > 0 && shape.latent_dim > 0, bad_input,
               "clustered data: needs at least one cluster and one latent dimension");
  const size_t latent = shape.latent_dim;
  // The subspace: a dim x latent Gaussian basis (columns nearly orthogonal in high dimension).
  std::vector<float> basis(dim * latent), centres(shape.clusters * latent);
  {
    std::mt19937_64 rng(shape_seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float& x : basis) x = normal(rng) / std::sqrt(static_cast<float>(latent));
    for (float& x : centres) x = normal(rng);
  }
  std::vector<float> v(n * dim);
  ThreadPool pool(0);
  pool.parallel_for(n, [&](size_t b, size_t e, int) {
    std::vector<float> z(latent);
    for (size_t i = b; i < e; ++i) {
      std::mt19937_64 rng = row_rng(point_seed, i);
      std::normal_distribution<float> normal(0.0f, 1.0f);
      const float* centre = centres.data() + (rng() % shape.clusters) * latent;
      for (size_t l = 0; l < latent; ++l) z[l] = centre[l] + shape.cluster_spread * normal(rng);
      float* row = v.data() + i * dim;
      for (size_t j = 0; j < dim; ++j) {
        float x = shape.noise * normal(rng);
        for (size_t l = 0; l < latent; ++l) x += basis[j * latent + l] * z[l];
        row[j] = x;
      }
      normalise(row, dim);
    }
  });
  return v;
}

VectorSet index_folder_vectors(const std::string& dir, const std::string& type, size_t queries,
                               uint64_t seed) {
  auto store = IndexStore::open_read(dir);
  const size_t dim = static_cast<size_t>(store->settings().dim);
  std::vector<int64_t> ids;
  std::vector<float> all;
  store->catalog().item_vectors(type, store->settings().model_id, dim, &ids, &all);
  const size_t n = ids.size();
  MMFUSE_CHECK(n > queries + 10, bad_input,
               dir + ": " + std::to_string(n) + " " + type + " items; the bench holds out " +
                   std::to_string(queries) + " as queries and needs more than 10 besides");
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  VectorSet set;
  set.dim = dim;
  set.queries.reserve(queries * dim);
  set.data.reserve((n - queries) * dim);
  for (size_t i = 0; i < n; ++i) {
    const float* row = all.data() + order[i] * dim;
    auto& into = i < queries ? set.queries : set.data;
    into.insert(into.end(), row, row + dim);
  }
  return set;
}

double recall_at_k(const std::vector<std::vector<SearchHit>>& approx,
                   const std::vector<std::vector<SearchHit>>& exact, size_t k) {
  MMFUSE_ASSERT(approx.size() == exact.size() && k > 0);
  if (approx.empty()) return 0.0;
  double total = 0;
  for (size_t q = 0; q < approx.size(); ++q) {
    std::set<int64_t> truth;
    for (size_t j = 0; j < std::min(k, exact[q].size()); ++j) truth.insert(exact[q][j].id);
    size_t found = 0;
    for (size_t j = 0; j < std::min(k, approx[q].size()); ++j)
      found += truth.count(approx[q][j].id);
    total += static_cast<double>(found) / static_cast<double>(k);
  }
  return total / static_cast<double>(approx.size());
}

nlohmann::ordered_json run_ann_bench(const AnnBenchOptions& o) {
  const auto t_gen = Clock::now();
  const double rss0 = rss_mb();
  MMFUSE_CHECK(o.data == "random" || o.data == "clustered" || o.data == "index", bad_input,
               "--data: unknown data set \"" + o.data + "\" (random, clustered, index)");
  VectorSet set;
  if (o.data == "index") {
    MMFUSE_CHECK(!o.index_dir.empty(), bad_input, "--data index: give the folder with --index");
    set = index_folder_vectors(o.index_dir, o.index_type, o.queries, o.seed);
  } else if (o.data == "clustered") {
    set = {o.dim, clustered_unit_vectors(o.vectors, o.dim, o.clustered, o.seed, o.seed + 1),
           clustered_unit_vectors(o.queries, o.dim, o.clustered, o.seed, o.seed + 2)};
  } else {
    set = {o.dim, random_unit_vectors(o.vectors, o.dim, o.seed),
           random_unit_vectors(o.queries, o.dim, o.seed + 1)};
  }
  const size_t dim = set.dim, count = set.data.size() / dim;
  const std::vector<float>& data = set.data;
  const std::vector<float>& queries = set.queries;
  std::vector<int64_t> ids(count);
  for (size_t i = 0; i < count; ++i) ids[i] = static_cast<int64_t>(i);
  const double gen_s = seconds_since(t_gen);
  const double rss_data = rss_mb();

  MMFUSE_CHECK(o.remove_fraction >= 0.0 && o.remove_fraction < 1.0, bad_input,
               "--remove: the share removed must be in [0, 1)");
  const std::vector<int64_t> removed = pick_removed(count, o.remove_fraction, o.seed + 3);

  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  std::vector<std::vector<SearchHit>> exact;
  const int d = static_cast<int>(dim);
  // Ground truth first, by exact search (batched: it is the reference, not a timing).
  {
    IndexParams p = o.params;
    p.kind = IndexKind::flat;
    VectorIndex flat = VectorIndex::build(d, p, ids.data(), data.data(), count, o.threads);
    flat.remove(removed);
    exact = flat.search(queries.data(), o.queries, o.top_k, o.threads);
  }
  for (const auto& kind_name : o.kinds) {
    IndexParams p = o.params;
    p.kind = parse_index_kind(kind_name, "--kinds");
    const double rss_before = rss_mb();
    const auto t0 = Clock::now();
    VectorIndex index = VectorIndex::build(d, p, ids.data(), data.data(), count, o.threads);
    const double build_s = seconds_since(t0);
    const double index_mb = rss_mb() - rss_before;
    nlohmann::ordered_json removal = nullptr;
    if (!removed.empty()) {
      // What a commit does: remove in place, or rebuild from the remaining vectors.
      const auto tr = Clock::now();
      const bool in_place = index.remove(removed);
      if (!in_place) index = rebuild_without(index, removed, ids, data, o.threads);
      removal = {{"removed", removed.size()},
                 {"removal", in_place ? "in place" : "rebuild"},
                 {"remove_s", round3(seconds_since(tr))},
                 {"tombstones", index.tombstones()}};
    }
    std::vector<int> settings = {0};
    if (p.kind == IndexKind::hnsw) settings = o.ef_search;
    if (p.kind == IndexKind::ivf) settings = o.nprobe;
    for (int setting : settings) {
      IndexParams sp = index.params();
      if (p.kind == IndexKind::hnsw) sp.ef_search = setting;
      if (p.kind == IndexKind::ivf) sp.ivf_nprobe = setting;
      index.set_search_params(sp);
      std::vector<std::vector<SearchHit>> approx(o.queries);
      std::vector<double> ms(o.queries);
      for (size_t q = 0; q < o.queries; ++q) {
        const auto tq = Clock::now();
        approx[q] = index.search(queries.data() + q * dim, 1, o.top_k, o.threads)[0];
        ms[q] = seconds_since(tq) * 1000.0;
      }
      nlohmann::ordered_json r = {
          {"kind", kind_name},
          {"build_s", round3(build_s)},
          {"index_memory_mb", round3(index_mb)},
          {"p50_ms", round3(percentile(ms, 0.50))},
          {"p99_ms", round3(percentile(ms, 0.99))},
          {"qps_single", round3(1000.0 * static_cast<double>(o.queries) /
                                std::max(1e-9, std::accumulate(ms.begin(), ms.end(), 0.0)))},
          {"recall_at_k", round3(recall_at_k(approx, exact, o.top_k))}};
      if (p.kind == IndexKind::hnsw)
        r["ef_search"] = setting, r["hnsw_m"] = sp.hnsw_m,
        r["ef_construction"] = sp.ef_construction;
      if (p.kind == IndexKind::ivf)
        r["nprobe"] = index.params().ivf_nprobe, r["nlist"] = index.params().ivf_nlist;
      if (!removal.is_null()) r.update(removal);
      results.push_back(r);
      std::fprintf(stderr, "index bench: %s\n", r.dump().c_str());
    }
  }
  nlohmann::ordered_json shape = nullptr;
  if (o.data == "clustered")
    shape = {{"clusters", o.clustered.clusters},
             {"latent_dim", o.clustered.latent_dim},
             {"cluster_spread", o.clustered.cluster_spread},
             {"noise", o.clustered.noise}};
  return {{"data", o.data},
          {"index", o.data == "index" ? nlohmann::ordered_json(o.index_dir) : nullptr},
          {"clustered_shape", shape},
          {"vectors", count},
          {"dim", dim},
          {"queries", o.queries},
          {"top_k", o.top_k},
          {"threads", o.threads},
          {"remove_fraction", o.remove_fraction},
          {"data_gen_s", round3(gen_s)},
          {"data_memory_mb", round3(rss_data - rss0)},
          {"peak_rss_mb", round3(rss_mb())},
          {"results", results}};
}

}  // namespace mmfuse
