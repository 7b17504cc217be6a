// Searching an index folder by text or image: embeds the query with the index's
// model (or a given folder, checked to be the same model), searches the image
// and/or text items, and returns catalogue records with cosine scores.
#pragma once

#include <cstddef>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/precision.h"
#include "core/thread_pool.h"
#include "index/catalog.h"
#include "index/vector_index.h"

namespace mmfuse {

struct SearchRequest {
  std::string text;            // a text query, or
  std::string image_path;      // an image query
  std::string type = "image";  // items searched: image, text or all
  size_t top_k = 10;
  float min_score = -std::numeric_limits<float>::infinity();
  std::string model_dir;  // empty: the folder recorded in the index
  SearchTuning tuning;    // HNSW ef / IVF nprobe for this query (0: the index's)
  // The cores the query model and the search use (null: a pool of all cores).
  std::shared_ptr<ThreadPool> pool;
  // The query model's arithmetic (--dtype).
  Precision precision = Precision::f32;
};

struct SearchResult {
  ItemRecord item;           // item.caption: its generated caption, if any
  float score = 0.0f;        // cosine between query and item
  double fused_score = 0.0;  // text queries over an index with captions: the RRF score that
                             // orders the results (see caption_search.h); 0 otherwise
};

// Best first. Text queries over an index with captions also match the
// captions' words (fuse_caption_matches). Throws Error(not_found) for a missing index or query
// image, Error(bad_input) for a corrupt query image or a different model.
std::vector<SearchResult> search_index(const std::string& index_dir, const SearchRequest& request);

}  // namespace mmfuse
