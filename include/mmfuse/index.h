// mmfuse public API: search an index folder (built by `mmfuse index add`) by
// text or by image: text -> image, image -> image and image -> text retrieval
// over CLIP / Chinese-CLIP embeddings (FAISS vectors + a SQLite catalogue).
// Gives the results `mmfuse search` prints.
//
//   mmfuse::SearchQuery q;
//   q.text = "a rusty pump";
//   for (const auto& hit : mmfuse::search_index("photos.idx", q))
//     std::printf("%.3f %s\n", hit.score, hit.path.c_str());
//
// Thread-safety: any number of threads may search the same or different
// index folders at once; results do not depend on who else is computing. Each call opens the index
// and its model; the query model and the search compute on the given ThreadPool (or one of
// `threads` cores).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "mmfuse/error.h"
#include "mmfuse/export.h"
#include "mmfuse/thread_pool.h"

namespace mmfuse {

struct SearchQuery {
  std::string text;            // a text query, or (exactly one of the two)
  std::string image_path;      // an image file query (JPEG, PNG, WebP, BMP)
  std::string type = "image";  // items searched: "image", "text" or "all"
  size_t top_k = 10;           // at most this many results
  float min_score = -std::numeric_limits<float>::infinity();  // drop results below this cosine
  // The model folder embedding the query; empty = the one the index was
  // built with. Must be the same model (checked).
  std::string model_dir;
  // Approximate indexes only, for this query: the HNSW search beam (wider =
  // better recall, slower) and the IVF cells visited; 0 = the index's own.
  int ef_search = 0;
  int nprobe = 0;
  // The query model's arithmetic: "f32" (default), "bf16" or "int8" (see
  // EmbedderOpenOptions::dtype in embedder.h).
  std::string dtype = "f32";
};

struct IndexHit {
  std::string path;    // image items: absolute file path; text items: the text's key
  int64_t id = 0;      // the item's id in the index catalogue
  std::string type;    // "image" or "text"
  std::string text;    // text items: the text; empty for images
  float score = 0.0f;  // cosine similarity between query and item, in [-1, 1]
  // Image items indexed with a caption model (`index add --caption-model`):
  // the generated caption; empty otherwise.
  std::string caption;
  // Text queries over an index with captions: the reciprocal-rank-fusion score
  // of the vector ranking and the caption keyword ranking, which orders the
  // results (then score is not monotonic); 0 otherwise.
  double fused_score = 0.0;
};

// Searches the index folder `index_dir`; results best first. A text query
// over an index with captions also matches the captions' words (see
// docs/retrieval.md, "Captions"). Throws
// mmfuse::Error: not_found for a missing index folder or query image,
// bad_input for a query with neither or both of text / image_path, an
// unknown type, top_k 0, negative ef_search / nprobe, a corrupt query image or a model other than
// the index's.
MMFUSE_API std::vector<IndexHit> search_index(const std::string& index_dir,
                                              const SearchQuery& query, int threads = 0);
// The same, computing on `pool`.
MMFUSE_API std::vector<IndexHit> search_index(const std::string& index_dir,
                                              const SearchQuery& query,
                                              std::shared_ptr<ThreadPool> pool);

}  // namespace mmfuse
