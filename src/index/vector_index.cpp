// FAISS indexes behind VectorIndex: flat and HNSW are wrapped in IndexIDMap2 (so
// results carry catalogue ids), IVF stores ids natively.
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

IndexKind auto_index_kind(size_t n) {
  return n < 50000 ? IndexKind::flat : IndexKind::hnsw;
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
}
VectorIndex::VectorIndex(VectorIndex&&) noexcept = default;
VectorIndex& VectorIndex::operator=(VectorIndex&&) noexcept = default;
VectorIndex::~VectorIndex() = default;

void VectorIndex::apply_search_params() {
  if (auto* h = hnsw_of(index_.get())) h->hnsw.efSearch = params_.ef_search;
  if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(index_.get())) {
    params_.ivf_nlist = static_cast<int>(ivf->nlist);
    ivf->nprobe = params_.ivf_nprobe > 0 ? static_cast<size_t>(params_.ivf_nprobe)
                                         : std::max<size_t>(1, ivf->nlist / 8);
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
  return static_cast<size_t>(index_->ntotal);
}

void VectorIndex::add(const int64_t* ids, const float* vectors, size_t n, int threads) {
  if (n == 0) return;
  OmpThreads omp(threads);
  faiss_call("adding to the index",
             [&] { index_->add_with_ids(static_cast<faiss::Index::idx_t>(n), vectors, ids); });
}

bool VectorIndex::remove(const std::vector<int64_t>& ids) {
  if (ids.empty()) return true;
  if (params_.kind == IndexKind::hnsw) return false;
  faiss::IDSelectorBatch sel(ids.size(), ids.data());
  faiss_call("removing from the index", [&] { index_->remove_ids(sel); });
  return true;
}

std::vector<std::vector<SearchHit>> VectorIndex::search(const float* queries, size_t nq, size_t k,
                                                        int threads,
                                                        const SearchTuning& tuning) const {
  std::vector<std::vector<SearchHit>> out(nq);
  const size_t kk = std::min(k, size());
  if (kk == 0 || nq == 0) return out;
  std::vector<float> scores(nq * kk);
  std::vector<faiss::Index::idx_t> labels(nq * kk);
  const auto fnq = static_cast<faiss::Index::idx_t>(nq);
  const auto fk = static_cast<faiss::Index::idx_t>(kk);
  // One query runs on one core: forking an OpenMP team per query only adds
  // barrier waits (tens of ms when other processes share the cores).
  OmpThreads omp(nq == 1 ? 1 : threads);
  faiss_call("searching the index", [&] {
    auto* hnsw = hnsw_of(index_.get());
    if (tuning.ef_search > 0 && hnsw != nullptr && tuning.ef_search != params_.ef_search) {
      // FAISS 1.7.3 sizes the HNSW beam from the index's own efSearch and
      // ignores SearchParametersHNSW's, so a tuned search sets it for its
      // duration, alone; plain searches share the lock.
      std::unique_lock alone(*search_lock_);
      hnsw->hnsw.efSearch = tuning.ef_search;
      try {
        index_->search(fnq, queries, fk, scores.data(), labels.data());
      } catch (...) {
        hnsw->hnsw.efSearch = params_.ef_search;
        throw;
      }
      hnsw->hnsw.efSearch = params_.ef_search;
    } else if (tuning.nprobe > 0 && dynamic_cast<faiss::IndexIVF*>(index_.get()) != nullptr) {
      faiss::SearchParametersIVF per_call;
      per_call.nprobe = static_cast<size_t>(tuning.nprobe);
      index_->search(fnq, queries, fk, scores.data(), labels.data(), &per_call);
    } else {
      std::shared_lock shared(*search_lock_);
      index_->search(fnq, queries, fk, scores.data(), labels.data());
    }
  });
  for (size_t q = 0; q < nq; ++q)
    for (size_t j = 0; j < kk; ++j)
      if (labels[q * kk + j] >= 0) out[q].push_back({labels[q * kk + j], scores[q * kk + j]});
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
