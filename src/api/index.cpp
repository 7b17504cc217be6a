// mmfuse::search_index (the public API) on top of index/searcher: the
// results `mmfuse search` prints.
#include "mmfuse/index.h"

#include "core/thread_pool.h"
#include "index/searcher.h"

namespace mmfuse {

std::vector<IndexHit> search_index(const std::string& index_dir, const SearchQuery& query,
                                   int threads) {
  return search_index(index_dir, query, std::make_shared<ThreadPool>(threads));
}

std::vector<IndexHit> search_index(const std::string& index_dir, const SearchQuery& query,
                                   std::shared_ptr<ThreadPool> pool) {
  MMFUSE_CHECK(pool != nullptr, bad_input, index_dir + ": no thread pool given");
  SearchRequest request;
  request.text = query.text;
  request.image_path = query.image_path;
  request.type = query.type;
  request.top_k = query.top_k;
  request.min_score = query.min_score;
  request.model_dir = query.model_dir;
  request.precision = parse_precision(query.dtype, "dtype");
  MMFUSE_CHECK(query.ef_search >= 0 && query.nprobe >= 0, bad_input,
               "search: ef_search and nprobe must not be negative");
  request.tuning.ef_search = query.ef_search;
  request.tuning.nprobe = query.nprobe;
  request.pool = std::move(pool);
  std::vector<IndexHit> out;
  for (SearchResult& r : search_index(index_dir, request))
    out.push_back({std::move(r.item.path), r.item.id, std::move(r.item.type),
                   std::move(r.item.text), r.score, std::move(r.item.caption), r.fused_score});
  return out;
}

}  // namespace mmfuse
