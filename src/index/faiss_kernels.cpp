// FlatIPStorage and IvfSq8IPIndex: FAISS's flat and IVF-SQ8 inner-product
// indexes with mmfuse's vectorised dot products.
#include "index/faiss_kernels.h"

#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/utils/Heap.h>

#include <vector>

#include "core/ops.h"

namespace mmfuse {

namespace {

// Batches at least this large go to FAISS's BLAS path (its own threshold).
constexpr faiss::Index::idx_t blas_batch = 20;

struct FastInnerProduct : faiss::FlatCodesDistanceComputer {
  explicit FastInnerProduct(const FlatIPStorage& storage)
      : faiss::FlatCodesDistanceComputer(storage.codes.data(), storage.code_size),
        vectors(storage.get_xb()),
        dim(static_cast<size_t>(storage.d)) {}

  void set_query(const float* x) override { query = x; }
  float distance_to_code(const uint8_t* code) override {
    return kernels::dot(query, reinterpret_cast<const float*>(code), dim);
  }
  float symmetric_dis(idx_t i, idx_t j) override {
    return kernels::dot(vectors + static_cast<size_t>(i) * dim,
                        vectors + static_cast<size_t>(j) * dim, dim);
  }

  const float* vectors;
  size_t dim;
  const float* query = nullptr;
};

// Scores 8-bit codes against a query without decoding them. A component
// decodes to vmin + (c + 0.5) / 255 * vdiff, so
//   <q, x> = sum q*(vmin + 0.5*vdiff/255) + sum (q*vdiff/255) * c
// = a per-query constant plus one uint8-by-float dot product.
struct Sq8InnerProductScanner : faiss::InvertedListScanner {
  Sq8InnerProductScanner(const IvfSq8IPIndex& ivf, bool keep_positions)
      : faiss::InvertedListScanner(keep_positions),
        dim(static_cast<size_t>(ivf.d)),
        vmin(ivf.sq.trained.data()),
        vdiff(ivf.sq.trained.data() + ivf.d),
        by_residual(ivf.by_residual),
        code_weights(dim) {
    keep_max = true;
    code_size = ivf.code_size;
  }

  void set_query(const float* q) override {
    double constant = 0;
    for (size_t j = 0; j < dim; ++j) {
      code_weights[j] = q[j] * vdiff[j] / 255.0f;
      constant += static_cast<double>(q[j]) * (vmin[j] + 0.5f * vdiff[j] / 255.0f);
    }
    query_constant = static_cast<float>(constant);
  }
  // With residual codes a score is <q, centroid> (the coarse score) + <q, residual>.
  void set_list(idx_t list, float coarse_score) override {
    list_no = list;
    list_constant = query_constant + (by_residual ? coarse_score : 0.0f);
  }
  float distance_to_code(const uint8_t* code) const override {
    return list_constant + kernels::dot_u8(code_weights.data(), code, dim);
  }

  size_t dim;
  const float* vmin;
  const float* vdiff;
  bool by_residual;
  std::vector<float> code_weights;
  float query_constant = 0.0f, list_constant = 0.0f;
};

// A FlatIPStorage holding `old`'s vectors when `old` is an inner-product
// IndexFlat (deleting `old`); otherwise `old` itself.
faiss::Index* upgraded_flat(faiss::Index* old) {
  auto* flat = dynamic_cast<faiss::IndexFlat*>(old);
  if (flat == nullptr || dynamic_cast<FlatIPStorage*>(old) != nullptr ||
      flat->metric_type != faiss::METRIC_INNER_PRODUCT)
    return old;
  faiss::Index* fast = FlatIPStorage::take_vectors_of(*flat).release();
  delete old;
  return fast;
}

}  // namespace

FlatIPStorage::FlatIPStorage(idx_t dim) : faiss::IndexFlatIP(dim) {}

std::unique_ptr<FlatIPStorage> FlatIPStorage::take_vectors_of(faiss::IndexFlat& flat) {
  auto fast = std::make_unique<FlatIPStorage>(flat.d);
  fast->codes = std::move(flat.codes);
  fast->ntotal = flat.ntotal;
  flat.codes.clear();
  flat.ntotal = 0;
  return fast;
}

faiss::FlatCodesDistanceComputer* FlatIPStorage::get_FlatCodesDistanceComputer() const {
  return new FastInnerProduct(*this);
}

void FlatIPStorage::search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
                           const faiss::SearchParameters* params) const {
  if (n >= blas_batch || params != nullptr) {
    faiss::IndexFlatIP::search(n, x, k, distances, labels, params);
    return;
  }
  const size_t dim = static_cast<size_t>(d);
  const float* vectors = get_xb();
  const size_t kk = static_cast<size_t>(k);
  for (idx_t q = 0; q < n; ++q) {
    const float* query = x + static_cast<size_t>(q) * dim;
    float* best = distances + static_cast<size_t>(q) * kk;
    idx_t* best_ids = labels + static_cast<size_t>(q) * kk;
    // A min-heap of the k highest scores: its top is the score to beat.
    faiss::minheap_heapify(kk, best, best_ids);
    for (idx_t i = 0; i < ntotal; ++i) {
      const float score = kernels::dot(query, vectors + static_cast<size_t>(i) * dim, dim);
      if (score > best[0]) faiss::minheap_replace_top(kk, best, best_ids, score, i);
    }
    faiss::minheap_reorder(kk, best, best_ids);
  }
}

IvfSq8IPIndex::IvfSq8IPIndex(faiss::Index* coarse, size_t dim, size_t lists)
    : faiss::IndexIVFScalarQuantizer(coarse, dim, lists, faiss::ScalarQuantizer::QT_8bit,
                                     faiss::METRIC_INNER_PRODUCT) {
  own_fields = true;
}

IvfSq8IPIndex::IvfSq8IPIndex(faiss::IndexIVFScalarQuantizer&& loaded)
    : faiss::IndexIVFScalarQuantizer(loaded) {
  // This copy now owns the quantizer and the lists; `loaded` must not free them.
  loaded.own_fields = false;
  loaded.own_invlists = false;
  loaded.quantizer = nullptr;
  loaded.invlists = nullptr;
  own_fields = true;
  own_invlists = true;
}

faiss::InvertedListScanner* IvfSq8IPIndex::get_InvertedListScanner(
    bool keep_positions, const faiss::IDSelector* sel) const {
  if (sel != nullptr || sq.qtype != faiss::ScalarQuantizer::QT_8bit ||
      metric_type != faiss::METRIC_INNER_PRODUCT)
    return faiss::IndexIVFScalarQuantizer::get_InvertedListScanner(keep_positions, sel);
  return new Sq8InnerProductScanner(*this, keep_positions);
}

std::unique_ptr<faiss::Index> with_fast_kernels(std::unique_ptr<faiss::Index> index) {
  if (auto* map = dynamic_cast<faiss::IndexIDMap*>(index.get())) {
    if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(map->index))
      hnsw->storage = upgraded_flat(hnsw->storage);
    else
      map->index = upgraded_flat(map->index);
    return index;
  }
  auto* ivf = dynamic_cast<faiss::IndexIVFScalarQuantizer*>(index.get());
  if (ivf != nullptr && dynamic_cast<IvfSq8IPIndex*>(ivf) == nullptr &&
      ivf->sq.qtype == faiss::ScalarQuantizer::QT_8bit &&
      ivf->metric_type == faiss::METRIC_INNER_PRODUCT) {
    auto fast = std::make_unique<IvfSq8IPIndex>(std::move(*ivf));
    fast->quantizer = upgraded_flat(fast->quantizer);
    return fast;
  }
  return index;
}

}  // namespace mmfuse
