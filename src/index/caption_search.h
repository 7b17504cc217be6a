// Hybrid retrieval for text queries: the vector hits fused with a keyword match
// on the items' generated captions (SQLite FTS5, BM25) by reciprocal rank
// fusion, as hybrid-search engines combine dense and lexical rankings.
// Thread-safety: free functions; the IndexStore belongs to the calling thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "index/index_store.h"
#include "index/searcher.h"

namespace mmfuse {

// The RRF constant of Cormack et al. (2009), the default of hybrid-search tools.
constexpr double kRrfK = 60.0;

// Reciprocal rank fusion: every id scores the sum over the rankings it is in of
// 1 / (k + rank), rank counted from 1. Best first; equal scores keep the order
// in which ids first appear (the rankings taken in order).
std::vector<std::pair<int64_t, double>> reciprocal_rank_fusion(
    const std::vector<std::vector<int64_t>>& rankings, double k = kRrfK);

// How many candidates each ranking contributes to the fusion: max(top_k, 50)
// (a larger window than top_k, as hybrid-search engines use, so an item found
// by both rankings but outside one's top_k still gets both shares) when the
// search is hybrid: a text query over image items of an index that holds
// captions. 0 when it is not (the vector search alone, as before captions).
size_t caption_fusion_window(IndexStore& store, const std::string& text, const std::string& type,
                             size_t top_k);

// Fuses `hits` (the vector search for `text`, best first, at most `window`)
// with the `window` items whose captions best match the query's words, by RRF;
// results keep their cosine score (keyword-only hits get it from their cached
// vector, `query` being the unit query vector) and carry the fused score;
// min_score drops any result below that cosine. Keeps the best top_k.
void fuse_caption_matches(IndexStore& store, const std::string& text,
                          const std::vector<float>& query, float min_score, size_t window,
                          size_t top_k, std::vector<SearchResult>& hits);

}  // namespace mmfuse
