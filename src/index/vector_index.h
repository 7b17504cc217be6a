// A FAISS vector index over L2-normalised embeddings (inner product = cosine),
// keyed by the catalogue's item ids. One class hides the three kinds mmfuse
// builds: exact (IndexFlatIP), HNSW (IndexHNSWFlat) and IVF with 8-bit scalar
// quantisation (IndexIVFScalarQuantizer).
//
// Thread-safety: const methods (search) may run concurrently; add/remove may not.
// A search with its own HNSW beam (SearchTuning) runs alone on the index.
// FAISS parallelises with OpenMP: every call here sets OpenMP to `threads`
// cores for its duration and back to 1 after, so FAISS and mmfuse's pool never
// spin at the same time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

namespace faiss {
struct Index;
}

namespace mmfuse {

// In the order `auto` moves through them as a collection grows.
enum class IndexKind { flat, hnsw, ivf };

const char* to_string(IndexKind kind);
// "flat", "hnsw" or "ivf"; throws Error(bad_input) naming `field` otherwise.
IndexKind parse_index_kind(const std::string& name, const std::string& field);

struct IndexParams {
  IndexKind kind = IndexKind::flat;
  // HNSW defaults: FAISS's build beam; a search beam that reaches recall@10
  // ~0.98 on 1M embedding-like vectors in ~1 ms (docs/retrieval.md, Performance).
  int hnsw_m = 32;           // graph degree (2*M links on layer 0)
  int ef_construction = 40;  // build beam width
  int ef_search = 256;       // query beam width (recall vs latency)
  int ivf_nlist = 0;         // IVF cells; 0 = 4*sqrt(n) at build time
  int ivf_nprobe = 0;        // cells visited per query; 0 = default_nprobe(nlist)
};

// IVF cells a query visits unless told otherwise: an eighth of them, which
// holds recall on small indexes, but at most 128, which bounds the latency of
// large ones (2M clustered vectors, 5656 cells: 128 → 2.3 ms at recall@10 0.990;
// 707 → 11.4 ms at 0.991).
constexpr size_t kMaxDefaultNprobe = 128;
size_t default_nprobe(size_t nlist);

// Per-query overrides of the search-time settings; 0 keeps the index's own.
struct SearchTuning {
  int ef_search = 0;  // HNSW beam
  int nprobe = 0;     // IVF cells visited
};

struct SearchHit {
  int64_t id = -1;
  float score = 0.0f;  // inner product = cosine for unit vectors
};

// Sets OpenMP's thread count for the calling thread while alive, then back to 1
// (the setting mmfuse's oneDNN calls rely on).
class OmpThreads {
 public:
  explicit OmpThreads(int threads);
  ~OmpThreads();
  OmpThreads(const OmpThreads&) = delete;
  OmpThreads& operator=(const OmpThreads&) = delete;
};

class VectorIndex {
 public:
  VectorIndex(VectorIndex&&) noexcept;
  VectorIndex& operator=(VectorIndex&&) noexcept;
  ~VectorIndex();

  // Builds an index of kind params.kind from n vectors (n * dim floats) with
  // their ids. IVF is trained on these vectors and needs at least 1000 of them.
  static VectorIndex build(int dim, const IndexParams& params, const int64_t* ids,
                           const float* vectors, size_t n, int threads);
  // Reads a file written by save(); params supplies the search-time settings.
  static VectorIndex load(const std::filesystem::path& path, const IndexParams& params);

  int dim() const { return dim_; }
  size_t size() const;
  const IndexParams& params() const { return params_; }

  // Changes the search-time settings (HNSW ef_search, IVF nprobe).
  void set_search_params(const IndexParams& params);

  void add(const int64_t* ids, const float* vectors, size_t n, int threads);
  // Removes the ids (unknown ids are ignored). Flat and IVF delete in place.
  // HNSW cannot unlink a node from its graph, so its removed vectors stay as
  // tombstones: they still route searches but are never returned. Returns false
  // (and changes nothing) when the tombstones would pass kMaxTombstoneFraction
  // of the graph: the caller rebuilds instead.
  bool remove(const std::vector<int64_t>& ids);
  // Removed vectors an HNSW graph still holds (0 for the other kinds).
  size_t tombstones() const { return tombstones_; }
  // Past this share of dead nodes, searches over-fetch too much and the
  // graph's memory is too stale: rebuild.
  static constexpr double kMaxTombstoneFraction = 0.1;

  // Top-k hits per query (nq * dim floats), best first; fewer when the index is smaller.
  // `tuning` applies to this call only (safe alongside concurrent searches);
  // settings that do not apply to the kind are ignored.
  std::vector<std::vector<SearchHit>> search(const float* queries, size_t nq, size_t k, int threads,
                                             const SearchTuning& tuning = {}) const;

  // Writes the index to `path` and fsyncs it (the caller renames it into place).
  void save(const std::filesystem::path& path) const;

 private:
  VectorIndex(int dim, const IndexParams& params, std::unique_ptr<faiss::Index> index);
  void apply_search_params();
  // One FAISS search of k results per query into scores/labels (nq * k).
  void search_raw(const float* queries, size_t nq, size_t k, const SearchTuning& tuning,
                  float* scores, int64_t* labels) const;

  int dim_ = 0;
  IndexParams params_;
  std::unique_ptr<faiss::Index> index_;
  size_t tombstones_ = 0;  // HNSW nodes whose id is -1 (removed)
  // Held shared by searches, alone by a search with its own HNSW beam.
  std::unique_ptr<std::shared_mutex> search_lock_;
};

// The kind `auto` picks for n vectors: exact search while it is fast enough
// (under 50 000 vectors: ~8 ms per query on one core, growing with n), HNSW
// above (~1 ms at 1M embedding-like vectors), and IVF-SQ8 from 2 000 000, where
// HNSW's float vectors and graph pass 4 GB and IVF's 8-bit codes take a third
// of that. An index already at the larger kind keeps it until n falls 20% below
// the line, so a folder hovering at a threshold is not rebuilt back and forth.
constexpr size_t kAutoHnswFrom = 50'000;
constexpr size_t kAutoIvfFrom = 2'000'000;
IndexKind auto_index_kind(size_t n, std::optional<IndexKind> current = std::nullopt);

}  // namespace mmfuse
