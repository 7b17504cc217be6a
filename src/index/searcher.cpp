// search_index: query embedding (through the embedding cache) and FAISS search
// over one consistent snapshot of the folder.
#include "index/searcher.h"

#include <algorithm>
#include <filesystem>

#include "core/thread_pool.h"
#include "index/caption_search.h"
#include "index/content_hash.h"
#include "index/index_model.h"
#include "index/index_store.h"
#include "mmfuse/error.h"
#include "models/clip.h"
#include "vision/image.h"

namespace mmfuse {

namespace {

// The query vector, from the cache when this text or image was embedded before.
// The cache write is best effort: a busy writer must not fail a search.
std::vector<float> query_vector(IndexStore& store, const std::string& index_dir,
                                const SearchRequest& r) {
  const IndexSettings& s = store.settings();
  const size_t dim = static_cast<size_t>(s.dim);
  std::vector<uint8_t> bytes;
  std::string hash;
  if (!r.image_path.empty()) {
    bytes = read_file_bytes(r.image_path);
    hash = sha256_hex(bytes);
  } else {
    hash = text_hash(r.text);
  }
  std::vector<float> v(dim);
  Catalog cache(store.dir() / "catalog.sqlite", false);
  if (cache.get_embedding(s.model_id, hash, v.data(), dim) && r.model_dir.empty()) return v;
  auto model = load_index_model(s, index_dir, r.model_dir, r.pool, r.precision);
  if (!r.image_path.empty()) {
    std::vector<Image> images;
    images.push_back(decode_image_memory(bytes.data(), bytes.size(), r.image_path));
    v = model->image_features(images);
  } else {
    v = model->text_features(std::vector<std::string>{r.text});
  }
  l2_normalize_rows(v.data(), 1, dim);
  sqlite3_busy_timeout(cache.db(), 50);
  try {
    cache.put_embedding(s.model_id, hash, v.data(), dim);
  } catch (const Error&) {
  }
  return v;
}

}  // namespace

std::vector<SearchResult> search_index(const std::string& index_dir, const SearchRequest& r) {
  MMFUSE_CHECK(r.text.empty() != r.image_path.empty(), bad_input,
               "search: give exactly one query, a text or an image");
  MMFUSE_CHECK(r.type == "image" || r.type == "text" || r.type == "all", bad_input,
               "search: type must be image, text or all, got \"" + r.type + "\"");
  MMFUSE_CHECK(r.top_k > 0, bad_input, "search: top_k must be at least 1");
  auto store = IndexStore::open_read(index_dir);
  const std::vector<float> q = query_vector(*store, index_dir, r);
  // Hybrid (captions): each ranking contributes a window of candidates.
  const size_t window = caption_fusion_window(*store, r.text, r.type, r.top_k);
  const size_t k = window > 0 ? window : r.top_k;
  std::vector<SearchResult> out;
  for (const char* type : IndexStore::kTypes) {
    if (r.type != "all" && r.type != type) continue;
    const VectorIndex* vi = store->vectors(type);
    if (!vi) continue;
    const auto hits =
        vi->search(q.data(), 1, k, r.pool ? r.pool->size() : hardware_threads(), r.tuning);
    for (const auto& hit : hits[0]) {
      if (hit.score < r.min_score) continue;
      auto item = store->catalog().item_by_id(hit.id);
      if (item) out.push_back({std::move(*item), hit.score});
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const SearchResult& a, const SearchResult& b) { return a.score > b.score; });
  if (out.size() > k) out.resize(k);
  if (window > 0) fuse_caption_matches(*store, r.text, q, r.min_score, window, r.top_k, out);
  return out;
}

}  // namespace mmfuse
