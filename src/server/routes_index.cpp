// Retrieval routes over the configured index folder: POST /v1/search (text or
// image query), POST /v1/index/items (texts, uploaded images, or files under an
// import root), DELETE /v1/index/items/{id}, GET /v1/index/items/{id}/content.
// Queries are embedded through the batching scheduler of the model that built
// the index; writes go through Indexer (one at a time, holding the cores).
// A read replica (index.read_only) searches the writer's published generation
// and refuses writes (403); with a store configured, a writer holds the index
// writer lease in it while writing, and a second writer gets 409 naming the
// holder (docs/scale-out.md, "Retrieval replicas").
#include <charconv>
#include <filesystem>
#include <fstream>
#include <set>
#include <tuple>

#include "index/caption_search.h"
#include "index/content_hash.h"
#include "index/index_store.h"
#include "index/indexer.h"
#include "server/http_util.h"
#include "server/index_replica.h"
#include "server/index_writer_lease.h"
#include "server/plant_service.h"
#include "server/server_context.h"
#include "vision/image_probe.h"

namespace fs = std::filesystem;

namespace mmfuse::server {

namespace {

const std::string& index_dir(const ServerContext& ctx) {
  if (ctx.config.index_dir.empty())
    throw HttpError(404, "not_found", "no index is configured on this server");
  return ctx.config.index_dir;
}

bool index_exists(const std::string& dir) {
  return fs::exists(fs::path(dir) / "catalog.sqlite");
}

// What searches read: the replica's generation in service, or a snapshot of
// the folder; null when there is no index yet.
std::unique_ptr<IndexStore> open_for_reading(ServerContext& ctx, const std::string& dir) {
  if (ctx.index_replica) return ctx.index_replica->open();
  if (!index_exists(dir)) return nullptr;
  return IndexStore::open_read(dir);
}

// Before a write: refused on a read replica; with a store, the writer lease
// (held, and renewed, until the returned object goes). Call with the
// process's own index_write_lock held.
std::unique_ptr<IndexWriterLease> begin_write(ServerContext& ctx, const std::string& dir) {
  if (ctx.config.index_read_only)
    throw HttpError(403, "read_only",
                    "this server is a read replica of index " + dir +
                        " (index.read_only): send index writes to the writer");
  if (!ctx.plant) return nullptr;
  try {
    return std::make_unique<IndexWriterLease>(ctx.plant->store(), dir);
  } catch (const IndexWriterBusy& e) {
    throw HttpError(409, "conflict", e.what());
  } catch (const Error& e) {
    throw HttpError(503, "unavailable", std::string("index writer lease: ") + e.what());
  }
}

Json item_json(const ItemRecord& item, float score, bool with_score, double fused_score = 0) {
  Json j = {{"id", item.id}, {"type", item.type}, {"path", item.path}};
  if (with_score) j["score"] = shortest_float(score);
  if (fused_score > 0) j["rrf"] = fused_score;
  if (item.type == "text") j["text"] = item.text;
  if (!item.caption.empty()) j["caption"] = item.caption;
  if (item.type == "image") j["url"] = "/v1/index/items/" + std::to_string(item.id) + "/content";
  return j;
}

int64_t parse_id(const std::string& text) {
  int64_t id = 0;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), id);
  MMFUSE_CHECK(r.ec == std::errc() && r.ptr == text.data() + text.size() && id > 0, bad_input,
               "id: \"" + text + "\" is not a positive integer");
  return id;
}

// True when `path` (canonical) is `root` or lies under it.
bool is_under(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p)
    if (p == path.end() || *p != *r) return false;
  return true;
}

void search(ServerContext& ctx, const httplib::Request& req, httplib::Response& res) {
  const std::string& dir = index_dir(ctx);
  ctx.require_ready();
  const Json body = parse_json_object(req);
  const bool has_text = body.contains("text"), has_image = body.contains("image");
  MMFUSE_CHECK(has_text != has_image, bad_input, "give exactly one of text or image");
  size_t top_k = 10;
  if (body.contains("top_k")) {
    MMFUSE_CHECK(body["top_k"].is_number_integer() && body["top_k"].get<int64_t>() >= 1 &&
                     body["top_k"].get<int64_t>() <= 1000,
                 bad_input, "top_k: expected an integer from 1 to 1000");
    top_k = body["top_k"].get<size_t>();
  }
  std::string type = "image";
  if (body.contains("type")) {
    MMFUSE_CHECK(body["type"].is_string(), bad_input, "type: expected image, text or all");
    type = body["type"].get<std::string>();
    MMFUSE_CHECK(type == "image" || type == "text" || type == "all", bad_input,
                 "type: \"" + type + "\" is not image, text or all");
  }
  float min_score = -2.0f;
  if (body.contains("min_score")) {
    MMFUSE_CHECK(body["min_score"].is_number(), bad_input, "min_score: expected a number");
    min_score = body["min_score"].get<float>();
  }
  SearchTuning tuning;
  for (auto [field, value, most] : {std::tuple{"ef_search", &tuning.ef_search, 32768},
                                    std::tuple{"nprobe", &tuning.nprobe, 1 << 20}}) {
    if (!body.contains(field)) continue;
    const Json& v = body[field];
    MMFUSE_CHECK(v.is_number_integer() && v.get<int64_t>() >= 1 && v.get<int64_t>() <= most,
                 bad_input,
                 std::string(field) + ": expected an integer from 1 to " + std::to_string(most));
    *value = v.get<int>();
  }
  EmbedInput query;
  std::string query_text;  // kept: the query itself moves into the embedding job
  if (has_text) {
    MMFUSE_CHECK(body["text"].is_string() && !body["text"].get<std::string>().empty(), bad_input,
                 "text: expected a non-empty string");
    query.text = body["text"].get<std::string>();
    query_text = query.text;
  } else {
    MMFUSE_CHECK(body["image"].is_string(), bad_input,
                 "image: expected a data URL or base64 string");
    query.kind = EmbedInput::Kind::image;
    query.image = decode_limited_image(decode_data_url(body["image"].get<std::string>(), "image"),
                                       "image", ctx.config.limits.max_image_pixels);
  }
  auto store = open_for_reading(ctx, dir);
  if (!store) return send_json(res, {{"results", Json::array()}});
  LoadedModel* m = ctx.model_by_fingerprint(store->settings().model_id);
  if (!m)
    throw HttpError(
        503, "unavailable",
        "the index was built with model " + store->settings().model_name + ", which is not loaded");
  std::vector<EmbedInput> inputs;
  inputs.push_back(std::move(query));
  std::shared_ptr<EmbedJob> job;
  try {
    job = m->scheduler->submit(std::move(inputs));
  } catch (const QueueFull&) {
    throw HttpError(503, "unavailable",
                    "model " + m->name + " is busy (queue full); retry shortly");
  }
  if (!job->wait_for(std::chrono::seconds(ctx.config.limits.request_timeout_s)))
    throw HttpError(504, "timeout", "the model did not answer in time");
  std::vector<float> q = job->result();
  l2_normalize_rows(q.data(), 1, q.size());
  // Hybrid (captions): each ranking contributes a window of candidates.
  const size_t window = caption_fusion_window(*store, query_text, type, top_k);
  const size_t k = window > 0 ? window : top_k;
  std::vector<SearchResult> hits;
  for (const char* t : IndexStore::kTypes) {
    if (type != "all" && type != t) continue;
    const VectorIndex* vi = store->vectors(t);
    if (!vi) continue;
    // Search on one core: the cores belong to the model calls.
    const auto found = vi->search(q.data(), 1, k, 1, tuning);
    for (const auto& hit : found[0]) {
      if (hit.score < min_score) continue;
      if (auto item = store->catalog().item_by_id(hit.id))
        hits.push_back({std::move(*item), hit.score});
    }
  }
  std::stable_sort(hits.begin(), hits.end(),
                   [](const auto& a, const auto& b) { return a.score > b.score; });
  if (hits.size() > k) hits.resize(k);
  if (window > 0) fuse_caption_matches(*store, query_text, q, min_score, window, top_k, hits);
  Json results = Json::array();
  for (const auto& h : hits) results.push_back(item_json(h.item, h.score, true, h.fused_score));
  send_json(res, {{"results", results}, {"model", m->name}});
}

void write_file(const fs::path& path, const void* data, size_t size) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out) throw_error(ErrorKind::internal, tmp.string() + ": cannot write");
  }
  fs::rename(tmp, path);
}

void add_items(ServerContext& ctx, const httplib::Request& req, httplib::Response& res) {
  const std::string& dir = index_dir(ctx);
  ctx.require_ready();
  if (ctx.config.index_read_only) begin_write(ctx, dir);  // 403 before reading the body
  const Json body = parse_json_object(req);
  for (const auto& [key, value] : body.items())
    MMFUSE_CHECK(key == "texts" || key == "images" || key == "paths", bad_input,
                 key + ": unknown field (expected texts, images or paths)");
  auto list = [&](const char* field) {
    if (!body.contains(field)) return Json::array();
    MMFUSE_CHECK(body[field].is_array(), bad_input, std::string(field) + ": expected a list");
    return Json(body[field]);
  };
  const Json texts = list("texts"), images = list("images"), paths = list("paths");
  MMFUSE_CHECK(!texts.empty() || !images.empty() || !paths.empty(), bad_input,
               "give at least one of texts, images or paths");
  MMFUSE_CHECK(texts.size() + images.size() + paths.size() <= ctx.config.limits.max_inputs,
               bad_input, "too many items in one request");

  // Validate everything before any write, so a bad item changes nothing.
  Json text_lines = Json::array();
  for (size_t i = 0; i < texts.size(); ++i) {
    const Json& t = texts[i];
    const std::string field = "texts[" + std::to_string(i) + "]";
    std::string id, text;
    if (t.is_string()) {
      text = t.get<std::string>();
    } else {
      MMFUSE_CHECK(t.is_object() && t.contains("text") && t["text"].is_string(), bad_input,
                   field + ": expected a string or {\"id\", \"text\"}");
      text = t["text"].get<std::string>();
      if (t.contains("id")) {
        MMFUSE_CHECK(t["id"].is_string() && !t["id"].get<std::string>().empty(), bad_input,
                     field + ".id: expected a non-empty string");
        id = t["id"].get<std::string>();
      }
    }
    MMFUSE_CHECK(!text.empty(), bad_input, field + ": empty text");
    if (id.empty()) id = "text:" + text_hash(text).substr(0, 16);
    text_lines.push_back({{"id", id}, {"text", text}});
  }
  std::vector<std::vector<uint8_t>> uploads;
  std::vector<std::string> upload_ext;
  for (size_t i = 0; i < images.size(); ++i) {
    const std::string field = "images[" + std::to_string(i) + "]";
    const Json& im = images[i];
    const Json& url = im.is_object() && im.contains("image") ? im["image"] : im;
    MMFUSE_CHECK(url.is_string(), bad_input,
                 field + ": expected a data URL or {\"image\": data URL}");
    std::vector<uint8_t> bytes = decode_data_url(url.get<std::string>(), field);
    decode_limited_image(bytes, field,
                         ctx.config.limits.max_image_pixels);  // rejects bad images up front
    upload_ext.push_back(probe_image_header(bytes.data(), bytes.size())->format);
    uploads.push_back(std::move(bytes));
  }
  std::vector<std::string> files;
  for (size_t i = 0; i < paths.size(); ++i) {
    const std::string field = "paths[" + std::to_string(i) + "]";
    MMFUSE_CHECK(paths[i].is_string(), bad_input, field + ": expected a string");
    std::error_code ec;
    const fs::path p = fs::canonical(paths[i].get<std::string>(), ec);
    if (ec)
      throw_error(ErrorKind::not_found,
                  field + ": " + paths[i].get<std::string>() + " does not exist");
    bool allowed = false;
    for (const auto& root : ctx.config.index_import_roots)
      allowed = allowed || is_under(p, fs::canonical(root, ec));
    if (!allowed)
      throw HttpError(403, "forbidden",
                      field + ": " + p.string() + " is not under an index.import_roots folder");
    files.push_back(p.string());
  }

  std::lock_guard<std::mutex> writer(ctx.index_write_lock);
  const auto lease = begin_write(ctx, dir);
  std::lock_guard<std::mutex> cores(ctx.inference_lock);  // the indexer embeds on the shared pool
  IndexOptions options;
  options.progress = false;
  if (!index_exists(dir)) {
    MMFUSE_CHECK(!ctx.models.empty(), bad_input, "no model is served to build a new index with");
    options.model_dir = ctx.models.front()->dir;
  }
  Indexer indexer(dir, options);
  IndexReport total;
  auto merge = [&](const IndexReport& r) {
    total.added += r.added;
    total.skipped += r.skipped;
    total.failed += r.failed;
    total.failures.insert(total.failures.end(), r.failures.begin(), r.failures.end());
  };
  const fs::path upload_dir = fs::path(dir) / "uploads";
  fs::create_directories(upload_dir);
  std::vector<std::pair<std::string, std::string>> keys;  // type, path
  if (!text_lines.empty()) {
    const fs::path tmp =
        upload_dir /
        ("texts-" + sha256_hex(req.body.data(), req.body.size()).substr(0, 16) + ".jsonl");
    std::string jsonl;
    for (const auto& line : text_lines) jsonl += line.dump() + "\n";
    write_file(tmp, jsonl.data(), jsonl.size());
    try {
      merge(indexer.add_texts(tmp.string()));
    } catch (...) {
      fs::remove(tmp);
      throw;
    }
    fs::remove(tmp);
    for (const auto& line : text_lines) keys.emplace_back("text", line["id"].get<std::string>());
  }
  for (size_t i = 0; i < uploads.size(); ++i) {
    const fs::path file = upload_dir / (sha256_hex(uploads[i]) + "." + upload_ext[i]);
    if (!fs::exists(file)) write_file(file, uploads[i].data(), uploads[i].size());
    files.push_back(file.string());
  }
  if (!files.empty()) {
    merge(indexer.add_files(files));
    for (const auto& f : files) keys.emplace_back("image", f);
  }
  if (ctx.config.index_publish) indexer.store().publish(true);  // for read replicas
  Json items = Json::array();
  for (const auto& [type, key] : keys)
    if (auto item = indexer.store().catalog().item_by_path(type, key))
      items.push_back(item_json(*item, 0, false));
  Json failures = Json::array();
  for (const auto& f : total.failures) failures.push_back({{"path", f.path}, {"error", f.error}});
  send_json(res,
            {{"added", total.added},
             {"skipped", total.skipped},
             {"failed", total.failed},
             {"failures", failures},
             {"items", items},
             {"count", indexer.store().catalog().count("")}},
            total.added > 0 ? 201 : 200);
}

}  // namespace

void add_index_routes(httplib::Server& http, ServerContext& ctx) {
  add_route(http, ctx, "POST", "/v1/search",
            [&ctx](const httplib::Request& req, httplib::Response& res) { search(ctx, req, res); });

  add_route(
      http, ctx, "POST", "/v1/index/items",
      [&ctx](const httplib::Request& req, httplib::Response& res) { add_items(ctx, req, res); });

  add_route(http, ctx, "DELETE", "/v1/index/items/{id}",
            [&ctx](const httplib::Request& req, httplib::Response& res) {
              const std::string& dir = index_dir(ctx);
              ctx.require_ready();
              const int64_t id = parse_id(req.matches[1]);
              if (ctx.config.index_read_only) begin_write(ctx, dir);
              if (!index_exists(dir))
                throw_error(ErrorKind::not_found, "item " + std::to_string(id) + " does not exist");
              std::lock_guard<std::mutex> writer(ctx.index_write_lock);
              const auto lease = begin_write(ctx, dir);
              std::lock_guard<std::mutex> cores(ctx.inference_lock);
              IndexOptions options;
              options.progress = false;
              Indexer indexer(dir, options);
              auto item = indexer.store().catalog().item_by_id(id);
              if (!item)
                throw_error(ErrorKind::not_found, "item " + std::to_string(id) + " does not exist");
              const IndexReport r = indexer.remove({item->path});
              if (ctx.config.index_publish) indexer.store().publish(true);
              // An uploaded image's file goes with it (files under import roots are the owner's).
              const fs::path uploads = fs::weakly_canonical(fs::path(dir) / "uploads");
              if (item->type == "image" && is_under(fs::weakly_canonical(item->path), uploads)) {
                std::error_code ec;
                fs::remove(item->path, ec);
              }
              send_json(res, {{"deleted", r.removed > 0}, {"id", id}, {"removed", r.removed}});
            });

  add_route(
      http, ctx, "GET", "/v1/index/items/{id}/content",
      [&ctx](const httplib::Request& req, httplib::Response& res) {
        const std::string& dir = index_dir(ctx);
        const int64_t id = parse_id(req.matches[1]);
        auto store = open_for_reading(ctx, dir);
        if (!store)
          throw_error(ErrorKind::not_found, "item " + std::to_string(id) + " does not exist");
        auto item = store->catalog().item_by_id(id);
        if (!item || item->type != "image")
          throw_error(ErrorKind::not_found, "image item " + std::to_string(id) + " does not exist");
        const std::vector<uint8_t> bytes = read_file_bytes(item->path);
        const auto header = probe_image_header(bytes.data(), bytes.size());
        const std::string type = header ? "image/" + header->format : "application/octet-stream";
        res.set_content(reinterpret_cast<const char*>(bytes.data()), bytes.size(), type.c_str());
      });
}

}  // namespace mmfuse::server
