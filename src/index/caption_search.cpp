// Reciprocal rank fusion of vector hits and caption keyword matches (see caption_search.h).
#include "index/caption_search.h"

#include <algorithm>
#include <unordered_map>

namespace mmfuse {

std::vector<std::pair<int64_t, double>> reciprocal_rank_fusion(
    const std::vector<std::vector<int64_t>>& rankings, double k) {
  std::vector<std::pair<int64_t, double>> fused;
  std::unordered_map<int64_t, size_t> slot;
  for (const auto& ranking : rankings)
    for (size_t rank = 0; rank < ranking.size(); ++rank) {
      auto [it, fresh] = slot.try_emplace(ranking[rank], fused.size());
      if (fresh) fused.emplace_back(ranking[rank], 0.0);
      fused[it->second].second += 1.0 / (k + static_cast<double>(rank + 1));
    }
  std::stable_sort(fused.begin(), fused.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return fused;
}

size_t caption_fusion_window(IndexStore& store, const std::string& text, const std::string& type,
                             size_t top_k) {
  if (text.empty() || type == "text" || !store.catalog().has_captions()) return 0;
  return std::max<size_t>(top_k, 50);
}

void fuse_caption_matches(IndexStore& store, const std::string& text,
                          const std::vector<float>& query, float min_score, size_t window,
                          size_t top_k, std::vector<SearchResult>& hits) {
  Catalog& catalog = store.catalog();
  std::vector<int64_t> by_vector;
  std::unordered_map<int64_t, SearchResult*> known;
  for (auto& h : hits) {
    by_vector.push_back(h.item.id);
    known[h.item.id] = &h;
  }
  const std::vector<int64_t> by_caption = catalog.caption_matches(text, window);
  const IndexSettings& settings = store.settings();
  const size_t dim = static_cast<size_t>(settings.dim);
  std::vector<float> v(dim);
  std::vector<SearchResult> out;
  for (const auto& [id, fused] : reciprocal_rank_fusion({by_vector, by_caption})) {
    if (out.size() >= top_k) break;
    if (auto it = known.find(id); it != known.end()) {
      out.push_back(std::move(*it->second));
    } else {
      auto item = catalog.item_by_id(id);
      if (!item || !catalog.get_embedding(settings.model_id, item->hash, v.data(), dim)) continue;
      float cosine = 0.0f;
      for (size_t i = 0; i < dim; ++i) cosine += query[i] * v[i];
      if (cosine < min_score) continue;
      out.push_back({std::move(*item), cosine});
    }
    out.back().fused_score = fused;
  }
  hits = std::move(out);
}

}  // namespace mmfuse
