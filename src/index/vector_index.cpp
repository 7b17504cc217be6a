// FAISS indexes behind VectorIndex: flat and HNSW are wrapped in IndexIDMap2 (so
// results carry catalogue ids), IVF stores ids natively. A removed HNSW node
// keeps its place in the graph with id -1 in the IDMap (a tombstone): FAISS
// then reports it as label -1, which search() drops.
#include "index/vector_index.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/index_io.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <mutex>

#include "index/faiss_kernels.h"
#include "mmfuse/error.h"

extern "C" void omp_set_num_threads(int);

namespace mmfuse {

namespace {

faiss::IndexHNSWFlat* hnsw_of(faiss::Index* index) {
  if (auto* map = dynamic_cast<faiss::IndexIDMap2*>(index))
    return dynamic_cast<faiss::IndexHNSWFlat*>(map->index);
  return nullptr;
}

// FAISS reports errors with its own exception type; callers get mmfuse::Error.
template <typename F>
auto faiss_call(const std::string& what, F&& f) {
  try {
    return f();
  } catch (const faiss::FaissException& e) {
    throw_error(ErrorKind::internal, what + ": " + e.what());
  }
}

}  // namespace

size_t default_nprobe(size_t nlist) {
  return std::clamp<size_t>(nlist / 8, 1, kMaxDefaultNprobe);
}

const char* to_string(IndexKind kind) {
  switch (kind) {
    case IndexKind::flat: return "flat";
    case IndexKind::hnsw: return "hnsw";
    case IndexKind::ivf: return "ivf";
  }
  return "?";
}

IndexKind parse_index_kind(const std::string& name, const std::string& field) {
  if (name == "flat") return IndexKind::flat;
  if (name == "hnsw") return IndexKind::hnsw;
  if (name == "ivf") return IndexKind::ivf;
  throw_error(ErrorKind::bad_input,
              field + ": unknown index kind \"" + name + "\" (flat, hnsw, ivf)");
}

IndexKind auto_index_kind(size_t n, std::optional<IndexKind> current) {
  const IndexKind by_size = n >= kAutoIvfFrom    ? IndexKind::ivf
                            : n >= kAutoHnswFrom ? IndexKind::hnsw
                                                 : IndexKind::flat;
  if (!current || *current <= by_size) return by_size;  // kinds are declared smallest-first
  // Shrinking: step down only once n is 20% under the current kind's line.
  const size_t line = *current == IndexKind::ivf ? kAutoIvfFrom : kAutoHnswFrom;
  if (static_cast<double>(n) >= 0.8 * static_cast<double>(line)) return *current;
  return auto_index_kind(n, *current == IndexKind::ivf ? IndexKind::hnsw : IndexKind::flat);
}

OmpThreads::OmpThreads(int threads) {
  omp_set_num_threads(std::max(1, threads));
}
OmpThreads::~OmpThreads() {
  omp_set_num_threads(1);
}

VectorIndex::VectorIndex(int dim, const IndexParams& params, std::unique_ptr<faiss::Index> index)
    : dim_(dim),
      params_(params),
      index_(std::move(index)),
      search_lock_(std::make_unique<std::shared_mutex>()) {
  apply_search_params();
  if (hnsw_of(index_.get())) {
    const auto& id_map = static_cast<faiss::IndexIDMap2*>(index_.get())->id_map;
    tombstones_ = static_cast<size_t>(std::count(id_map.begin(), id_map.end(), -1));
  }
}
VectorIndex::VectorIndex(VectorIndex&&) noexcept = default;
VectorIndex& VectorIndex::operator=(VectorIndex&&) noexcept = default;
VectorIndex::~VectorIndex() = default;

void VectorIndex::apply_search_params() {
  if (auto* h = hnsw_of(index_.get())) h->hnsw.efSearch = params_.ef_search;
  if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(index_.get())) {
    params_.ivf_nlist = static_cast<int>(ivf->nlist);
    ivf->nprobe = params_.ivf_nprobe > 0 ? static_cast<size_t>(params_.ivf_nprobe)
                                         : default_nprobe(ivf->nlist);
    params_.ivf_nprobe = static_cast<int>(ivf->nprobe);
  }
}

VectorIndex VectorIndex::build(int dim, const IndexParams& params, const int64_t* ids,
                               const float* vectors, size_t n, int threads) {
  MMFUSE_CHECK(dim > 0, bad_input, "vector index: dimension must be positive");
  OmpThreads omp(threads);
  return faiss_call("building the " + std::string(to_string(params.kind)) + " index", [&] {
    std::unique_ptr<faiss::Index> index;
    IndexParams p = params;
    if (p.kind == IndexKind::ivf) {
      MMFUSE_CHECK(n >= 1000, bad_input,
                   "ivf index: needs at least 1000 vectors to train, got " + std::to_string(n));
      int nlist =
          p.ivf_nlist > 0 ? p.ivf_nlist : static_cast<int>(4 * std::sqrt(static_cast<double>(n)));
      nlist = std::clamp(nlist, 1, static_cast<int>(n / 39));  // FAISS wants >= 39 points per cell
      auto ivf =
          std::make_unique<IvfSq8IPIndex>(new FlatIPStorage(dim), dim, static_cast<size_t>(nlist));
      // k-means on at most 64 points per cell (FAISS: 256): at 1M vectors and
      // 4000 cells that is most of the build time, and 64 already places the
      // cells well (FAISS's guidance is 30 to 256).
      ivf->cp.max_points_per_centroid = 64;
      ivf->train(static_cast<faiss::Index::idx_t>(n), vectors);
      p.ivf_nlist = nlist;
      index = std::move(ivf);
    } else {
      faiss::Index* inner = nullptr;
      if (p.kind == IndexKind::hnsw) {
        auto* h = new faiss::IndexHNSWFlat(dim, p.hnsw_m, faiss::METRIC_INNER_PRODUCT);
        delete h->storage;
        h->storage = new FlatIPStorage(dim);
        h->hnsw.efConstruction = p.ef_construction;
        inner = h;
      } else {
        inner = new FlatIPStorage(dim);
      }
      auto map = std::make_unique<faiss::IndexIDMap2>(inner);
      map->own_fields = true;
      index = std::move(map);
    }
    if (n > 0) index->add_with_ids(static_cast<faiss::Index::idx_t>(n), vectors, ids);
    return VectorIndex(dim, p, std::move(index));
  });
}

VectorIndex VectorIndex::load(const std::filesystem::path& path, const IndexParams& params) {
  std::unique_ptr<faiss::Index> index = with_fast_kernels(std::unique_ptr<faiss::Index>(
      faiss_call("reading " + path.string(), [&] { return faiss::read_index(path.c_str()); })));
  IndexParams p = params;
  if (hnsw_of(index.get()))
    p.kind = IndexKind::hnsw;
  else if (dynamic_cast<faiss::IndexIVF*>(index.get()))
    p.kind = IndexKind::ivf;
  else
    p.kind = IndexKind::flat;
  const int dim = static_cast<int>(index->d);
  return VectorIndex(dim, p, std::move(index));
}

void VectorIndex::set_search_params(const IndexParams& params) {
  params_.ef_search = params.ef_search;
  params_.ivf_nprobe = params.ivf_nprobe;
  apply_search_params();
}

size_t VectorIndex::size() const {
  return static_cast<size_t>(index_->ntotal) - tombstones_;
}

void VectorIndex::add(const int64_t* ids, const float* vectors, size_t n, int threads) {
  if (n == 0) return;
  OmpThreads omp(threads);
  faiss_call("adding to the index",
             [&] { index_->add_with_ids(static_cast<faiss::Index::idx_t>(n), vectors, ids); });
}

bool VectorIndex::remove(const std::vector<int64_t>& ids) {
  if (ids.empty()) return true;
  if (hnsw_of(index_.get()) == nullptr) {
    faiss::IDSelectorBatch sel(ids.size(), ids.data());
    faiss_call("removing from the index", [&] { index_->remove_ids(sel); });
    return true;
  }
  auto* map = static_cast<faiss::IndexIDMap2*>(index_.get());
  std::vector<size_t> nodes;
  for (int64_t id : ids) {
    const auto it = map->rev_map.find(id);
    if (it != map->rev_map.end()) nodes.push_back(static_cast<size_t>(it->second));
  }
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  const double dead = static_cast<double>(tombstones_ + nodes.size());
  if (dead > kMaxTombstoneFraction * static_cast<double>(index_->ntotal)) return false;
  for (size_t node : nodes) {
    map->rev_map.erase(map->id_map[node]);
    map->id_map[node] = -1;
  }
  tombstones_ += nodes.size();
  return true;
}

void VectorIndex::search_raw(const float* queries, size_t nq, size_t k, const SearchTuning& tuning,
                             float* scores, int64_t* labels) const {
  const auto fnq = static_cast<faiss::Index::idx_t>(nq);
  const auto fk = static_cast<faiss::Index::idx_t>(k);
  static_assert(sizeof(faiss::Index::idx_t) == sizeof(int64_t));
  auto* flabels = reinterpret_cast<faiss::Index::idx_t*>(labels);
  faiss_call("searching the index", [&] {
    auto* hnsw = hnsw_of(index_.get());
    if (tuning.ef_search > 0 && hnsw != nullptr && tuning.ef_search != params_.ef_search) {
      // FAISS 1.7.3 sizes the HNSW beam from the index's own efSearch and
      // ignores SearchParametersHNSW's, so a tuned search sets it for its
      // duration, alone; plain searches share the lock.
      std::unique_lock alone(*search_lock_);
      hnsw->hnsw.efSearch = tuning.ef_search;
      try {
        index_->search(fnq, queries, fk, scores, flabels);
      } catch (...) {
        hnsw->hnsw.efSearch = params_.ef_search;
        throw;
      }
      hnsw->hnsw.efSearch = params_.ef_search;
    } else if (tuning.nprobe > 0 && dynamic_cast<faiss::IndexIVF*>(index_.get()) != nullptr) {
      faiss::SearchParametersIVF per_call;
      per_call.nprobe = static_cast<size_t>(tuning.nprobe);
      index_->search(fnq, queries, fk, scores, flabels, &per_call);
    } else {
      std::shared_lock shared(*search_lock_);
      index_->search(fnq, queries, fk, scores, flabels);
    }
  });
}

std::vector<std::vector<SearchHit>> VectorIndex::search(const float* queries, size_t nq, size_t k,
                                                        int threads,
                                                        const SearchTuning& tuning) const {
  std::vector<std::vector<SearchHit>> out(nq);
  const size_t want = std::min(k, size());
  if (want == 0 || nq == 0) return out;
  // One query runs on one core: forking an OpenMP team per query only adds
  // barrier waits (tens of ms when other processes share the cores).
  OmpThreads omp(nq == 1 ? 1 : threads);
  const size_t total = static_cast<size_t>(index_->ntotal);
  // Tombstones take result slots: ask for enough extra to cover twice their
  // share, and ask again for more on the rare query that still comes up short.
  const double dead_share = static_cast<double>(tombstones_) / static_cast<double>(total);
  size_t fetch = std::min(
      total, want + static_cast<size_t>(2.0 * dead_share * want) + (tombstones_ > 0 ? 16 : 0));
  std::vector<float> scores;
  std::vector<int64_t> labels;
  for (int round = 0;; ++round) {
    scores.assign(nq * fetch, 0.0f);
    labels.assign(nq * fetch, -1);
    search_raw(queries, nq, fetch, tuning, scores.data(), labels.data());
    bool short_of_hits = false;
    for (size_t q = 0; q < nq; ++q) {
      out[q].clear();
      for (size_t j = 0; j < fetch && out[q].size() < want; ++j)
        if (labels[q * fetch + j] >= 0)
          out[q].push_back({labels[q * fetch + j], scores[q * fetch + j]});
      short_of_hits = short_of_hits || out[q].size() < want;
    }
    // Three rounds reach 16x the request: a query still short then is short
    // for the graph's own reasons, as it could be without tombstones.
    if (!short_of_hits || tombstones_ == 0 || fetch == total || round == 2) break;
    fetch = std::min(total, fetch * 4);
  }
  return out;
}

void VectorIndex::save(const std::filesystem::path& path) const {
  faiss_call("writing " + path.string(), [&] { faiss::write_index(index_.get(), path.c_str()); });
  // Durable before the caller renames it into place and commits the catalogue.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  MMFUSE_CHECK(fd >= 0, internal, path.string() + ": cannot reopen to fsync");
  const int rc = ::fsync(fd);
  ::close(fd);
  MMFUSE_CHECK(rc == 0, internal, path.string() + ": fsync failed");
}

}  // namespace mmfuse
