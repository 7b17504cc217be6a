// FAISS index parts whose distances come from mmfuse's vectorised kernels.
// Debian's libfaiss is built for baseline x86-64, where its inner product adds
// one float at a time (about 0.7 us per 512-d pair) and its 8-bit scalar
// quantizer decodes one component at a time; HNSW construction and search,
// exact search of a single query and IVF list scans spend nearly all their
// time there. These subclasses only replace the distance code: to FAISS they
// are still an IndexFlatIP and an IndexIVFScalarQuantizer, and write_index
// stores them as such; with_fast_kernels() swaps them back in after read_index.
#pragma once

#include <faiss/IndexFlat.h>
#include <faiss/IndexScalarQuantizer.h>

#include <memory>

namespace mmfuse {

// The vectors of an exact or HNSW index, and the coarse quantizer of an IVF one.
struct FlatIPStorage : faiss::IndexFlatIP {
  explicit FlatIPStorage(idx_t dim);

  // Moves the vectors out of `flat` (an inner-product IndexFlat).
  static std::unique_ptr<FlatIPStorage> take_vectors_of(faiss::IndexFlat& flat);

  faiss::FlatCodesDistanceComputer* get_FlatCodesDistanceComputer() const override;

  // Under 20 queries: one pass over the vectors per query with the fast kernel.
  // Larger batches keep FAISS's path (a BLAS matrix product).
  void search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
              const faiss::SearchParameters* params = nullptr) const override;
};

// IVF with 8-bit scalar quantisation (per-dimension ranges) and inner product.
struct IvfSq8IPIndex : faiss::IndexIVFScalarQuantizer {
  // Owns `coarse` (the quantizer).
  IvfSq8IPIndex(faiss::Index* coarse, size_t dim, size_t lists);
  // Takes over the lists, quantizer and codec of `loaded` (an 8-bit
  // inner-product IndexIVFScalarQuantizer), leaving it empty.
  explicit IvfSq8IPIndex(faiss::IndexIVFScalarQuantizer&& loaded);

  faiss::InvertedListScanner* get_InvertedListScanner(bool keep_positions,
                                                      const faiss::IDSelector* sel) const override;
};

// `index` as read by faiss::read_index, with the parts above in place of the
// FAISS classes they stand for (the inner-product flat vectors of a flat or
// HNSW index, an IVF-SQ8 index and its coarse quantizer).
std::unique_ptr<faiss::Index> with_fast_kernels(std::unique_ptr<faiss::Index> index);

}  // namespace mmfuse
