// Indexer: the add / add-text / sync / remove flows (see indexer.h).
#include "index/indexer.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/strings.h"
#include "core/thread_pool.h"
#include "index/content_hash.h"
#include "index/index_model.h"
#include "index/progress.h"
#include "mmfuse/error.h"
#include "models/registry.h"
#include "vision/image.h"

namespace fs = std::filesystem;

namespace mmfuse {

namespace {

bool has_image_extension(const fs::path& p) {
  const std::string ext = ascii_lower(p.extension().string());
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".webp" || ext == ".bmp";
}

std::string absolute_path(const std::string& p) {
  return fs::absolute(p).lexically_normal().string();
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One file of a batch on its way through stat, hash, decode and embed.
struct Pending {
  std::string path;
  int64_t size = 0, mtime = 0;
  std::vector<uint8_t> bytes;
  std::string hash, error;
  Image image;
  bool need_embed = false;
  bool need_caption = false;
  int64_t caption_for = 0;  // an indexed item (same content) that still lacks a caption
  std::string caption;
  std::vector<float> vector;
};

void merge(IndexReport& into, const IndexReport& r) {
  into.added += r.added;
  into.skipped += r.skipped;
  into.failed += r.failed;
  into.removed += r.removed;
  into.captioned += r.captioned;
  into.failures.insert(into.failures.end(), r.failures.begin(), r.failures.end());
}

}  // namespace

std::vector<std::string> list_image_files(const std::vector<std::string>& paths) {
  std::set<std::string> out;
  for (const auto& p : paths) {
    std::error_code ec;
    const auto st = fs::status(p, ec);
    if (!fs::exists(st)) throw_error(ErrorKind::not_found, p + ": no such file or folder");
    if (!fs::is_directory(st)) {
      out.insert(absolute_path(p));
      continue;
    }
    // Unreadable sub-folders are skipped rather than ending the walk.
    fs::recursive_directory_iterator it(p, fs::directory_options::skip_permission_denied, ec), end;
    if (ec) throw_error(ErrorKind::bad_input, p + ": cannot list the folder: " + ec.message());
    for (; it != end; it.increment(ec)) {
      if (ec) break;
      if (it->is_regular_file(ec) && has_image_extension(it->path()))
        out.insert(absolute_path(it->path().string()));
    }
  }
  return {out.begin(), out.end()};
}

Indexer::Indexer(const fs::path& index_dir, IndexOptions options)
    : options_(std::move(options)), pool_(pool_or_own(options_.pool)) {
  if (options_.model_dir.empty() && !fs::exists(index_dir / "catalog.sqlite"))
    throw_error(ErrorKind::bad_input,
                index_dir.string() + ": no index here yet; a model folder is needed to create one");
  MMFUSE_CHECK(options_.batch > 0 && options_.commit_every > 0, bad_input,
               "index options: batch and commit_every must be positive");
  store_ = IndexStore::open_write(index_dir, !options_.model_dir.empty());
  if (!store_->initialised()) {
    MMFUSE_CHECK(
        !options_.model_dir.empty(), bad_input,
        index_dir.string() + ": no index here yet; a model folder is needed to create one");
    model_ = open_dual_encoder(options_.model_dir, pool_, options_.precision);
    IndexSettings s = settings_for_model(*model_, options_.model_dir);
    s.kind = options_.kind;
    s.params = options_.params;
    store_->initialise(s);
  } else if (!options_.model_dir.empty()) {
    model_ = load_index_model(store_->settings(), index_dir.string(), options_.model_dir, pool_,
                              options_.precision);
  }
}

Indexer::~Indexer() = default;

DualEncoder& Indexer::model() {
  if (!model_)
    model_ = load_index_model(store_->settings(), store_->dir().string(), "", pool_,
                              options_.precision);
  return *model_;
}

void Indexer::commit(ChangeSet& pending) {
  store_->commit(pending, pool_->size());
  pending = ChangeSet{};
}

void Indexer::remember_roots(const std::vector<std::string>& paths) {
  std::set<std::string> roots;
  if (auto stored = store_->catalog().meta("roots")) {
    auto j = nlohmann::json::parse(*stored, nullptr, false);
    if (j.is_array())
      for (const auto& r : j)
        if (r.is_string()) roots.insert(r.get<std::string>());
  }
  for (const auto& p : paths)
    if (fs::is_directory(p)) roots.insert(absolute_path(p));
  WriteTransaction tx(store_->catalog());
  store_->catalog().set_meta("roots", nlohmann::json(roots).dump());
  tx.commit();
}

IndexReport Indexer::add_files(const std::vector<std::string>& paths) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<std::string> files = list_image_files(paths);
  DualEncoder& m = model();
  remember_roots(paths);
  Catalog& cat = store_->catalog();
  const IndexSettings& settings = store_->settings();
  const size_t dim = static_cast<size_t>(settings.dim);
  ThreadPool& pool = *pool_;
  IndexReport report;
  Progress progress("index add", files.size(), options_.progress);
  ChangeSet pending;
  std::set<std::string> pending_hashes;
  const bool captioning = static_cast<bool>(options_.caption);
  auto fail = [&](const std::string& path, const std::string& error) {
    ++report.failed;
    report.failures.push_back({path, error});
  };

  for (size_t first = 0; first < files.size(); first += options_.batch) {
    const size_t count = std::min(options_.batch, files.size() - first);
    // 1. Unchanged size and mtime at a known path: skip without reading the file.
    std::vector<Pending> batch;
    for (size_t i = first; i < first + count; ++i) {
      Pending p;
      p.path = files[i];
      struct stat st {};
      if (::stat(p.path.c_str(), &st) != 0) {
        fail(p.path, p.path + ": cannot stat");
        continue;
      }
      p.size = st.st_size;
      p.mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
      auto known = cat.item_by_path("image", p.path);
      if (known && known->size == p.size && known->mtime == p.mtime &&
          (!captioning || !known->caption.empty())) {
        ++report.skipped;
        continue;
      }
      batch.push_back(std::move(p));
    }
    // 2. Read and hash on all cores.
    pool.parallel_for(batch.size(), [&](size_t b, size_t e, int) {
      for (size_t i = b; i < e; ++i) {
        try {
          batch[i].bytes = read_file_bytes(batch[i].path);
          batch[i].hash = sha256_hex(batch[i].bytes);
        } catch (const std::exception& ex) {
          batch[i].error = ex.what();
        }
      }
    });
    // 3. Content already indexed (here or at another path): skip; changed file: replace.
    for (auto& p : batch) {
      if (!p.error.empty()) continue;
      auto known = cat.item_by_path("image", p.path);
      if (known && known->hash == p.hash) {
        pending.touches.push_back(
            {known->id, "image", p.path, "", p.hash, p.size, p.mtime, "", ""});
        if (captioning && known->caption.empty()) {
          p.caption_for = known->id;
          p.need_caption = true;
        } else {
          p.error = "-";
        }
        continue;
      }
      if (known) pending.deletes.push_back(*known);
      if (cat.item_by_hash("image", p.hash) || pending_hashes.count(p.hash)) {
        p.error = "-";  // a duplicate of indexed content
        continue;
      }
      p.vector.resize(dim);
      p.need_embed = !cat.get_embedding(settings.model_id, p.hash, p.vector.data(), dim);
      p.need_caption = captioning;
    }
    // 4. Decode what the cache lacks or the captioner needs (all cores), caption
    // (the caption model uses the cores itself), then embed in one model call.
    pool.parallel_for(batch.size(), [&](size_t b, size_t e, int) {
      for (size_t i = b; i < e; ++i) {
        if (!batch[i].error.empty() || !(batch[i].need_embed || batch[i].need_caption)) continue;
        try {
          batch[i].image =
              decode_image_memory(batch[i].bytes.data(), batch[i].bytes.size(), batch[i].path);
        } catch (const std::exception& ex) {
          batch[i].error = ex.what();
        }
        batch[i].bytes = {};
      }
    });
    for (auto& p : batch) {
      if (!p.error.empty() || !p.need_caption) continue;
      try {
        p.caption = options_.caption(p.path, p.image);
      } catch (const std::exception& ex) {
        p.error = p.path + ": caption: " + ex.what();
      }
    }
    std::vector<Image> images;
    std::vector<Pending*> embedded;
    for (auto& p : batch)
      if (p.error.empty() && p.need_embed) {
        images.push_back(std::move(p.image));
        embedded.push_back(&p);
      }
    if (!images.empty()) {
      std::vector<float> f = m.image_features(images);
      l2_normalize_rows(f.data(), images.size(), dim);
      WriteTransaction tx(cat);  // cache survives even if this run is killed before its commit
      for (size_t i = 0; i < embedded.size(); ++i) {
        embedded[i]->vector.assign(f.begin() + static_cast<long>(i * dim),
                                   f.begin() + static_cast<long>((i + 1) * dim));
        cat.put_embedding(settings.model_id, embedded[i]->hash, embedded[i]->vector.data(), dim);
      }
      tx.commit();
    }
    for (auto& p : batch) {
      if (p.error == "-") {
        ++report.skipped;
      } else if (!p.error.empty()) {
        fail(p.path, p.error);
      } else if (p.caption_for != 0) {
        pending.captions.emplace_back(p.caption_for, p.caption);
        ++report.skipped;
        ++report.captioned;
      } else {
        if (p.need_caption) ++report.captioned;
        pending.inserts.push_back(
            {0, "image", p.path, "", p.hash, p.size, p.mtime, "", std::move(p.caption)});
        pending.insert_vectors.insert(pending.insert_vectors.end(), p.vector.begin(),
                                      p.vector.end());
        pending_hashes.insert(p.hash);
        ++report.added;
      }
    }
    if (pending.inserts.size() + pending.captions.size() >= options_.commit_every) {
      commit(pending);
      pending_hashes.clear();
    }
    progress.update(first + count, report.added, report.failed);
  }
  commit(pending);
  store_->publish();  // read replicas see the add (when the folder is published)
  progress.finish(files.size(), report.added, report.failed);
  report.seconds = seconds_since(t0);
  return report;
}

IndexReport Indexer::add_texts(const std::string& file) {
  const auto t0 = std::chrono::steady_clock::now();
  std::ifstream in(file);
  if (!fs::exists(file)) throw_error(ErrorKind::not_found, file + ": no such file");
  MMFUSE_CHECK(in.good(), bad_input, file + ": cannot be read");
  const bool jsonl = fs::path(file).extension() == ".jsonl";
  const std::string abs = absolute_path(file);
  IndexReport report;
  // key, text
  std::vector<std::pair<std::string, std::string>> entries;
  std::string line;
  for (size_t lineno = 1; std::getline(in, line); ++lineno) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = file + ":" + std::to_string(lineno);
    if (jsonl || line[0] == '{') {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("text") || !j["text"].is_string()) {
        ++report.failed;
        report.failures.push_back(
            {where, where + ": expected a JSON object with a string \"text\""});
        continue;
      }
      std::string key = abs + ":" + std::to_string(lineno);
      if (j.contains("id")) key = j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump();
      entries.emplace_back(key, j["text"].get<std::string>());
    } else {
      entries.emplace_back(abs + ":" + std::to_string(lineno), line);
    }
  }
  DualEncoder& m = model();
  Catalog& cat = store_->catalog();
  const IndexSettings& settings = store_->settings();
  const size_t dim = static_cast<size_t>(settings.dim);
  ChangeSet pending;
  std::set<std::string> pending_keys, pending_hashes;
  std::vector<std::string> to_embed;
  std::vector<ItemRecord> to_embed_items;
  auto flush_embeds = [&] {
    if (to_embed.empty()) return;
    std::vector<float> f = m.text_features(to_embed);
    l2_normalize_rows(f.data(), to_embed.size(), dim);
    for (size_t i = 0; i < to_embed.size(); ++i) {
      pending.inserts.push_back(to_embed_items[i]);
      pending.insert_vectors.insert(pending.insert_vectors.end(),
                                    f.begin() + static_cast<long>(i * dim),
                                    f.begin() + static_cast<long>((i + 1) * dim));
    }
    to_embed.clear();
    to_embed_items.clear();
  };
  for (const auto& [key, text] : entries) {
    const std::string hash = text_hash(text);
    auto known = cat.item_by_path("text", key);
    if ((known && known->hash == hash) || pending_keys.count(key)) {
      ++report.skipped;
      continue;
    }
    if (known) pending.deletes.push_back(*known);
    if (cat.item_by_hash("text", hash) || pending_hashes.count(hash)) {
      ++report.skipped;
      continue;
    }
    pending_keys.insert(key);
    pending_hashes.insert(hash);
    ItemRecord item{0, "text", key, text, hash, static_cast<int64_t>(text.size()), 0, "", ""};
    std::vector<float> v(dim);
    if (cat.get_embedding(settings.model_id, hash, v.data(), dim)) {
      pending.inserts.push_back(item);
      pending.insert_vectors.insert(pending.insert_vectors.end(), v.begin(), v.end());
    } else {
      to_embed.push_back(text);
      to_embed_items.push_back(item);
      if (to_embed.size() >= 64) flush_embeds();
    }
    ++report.added;
  }
  flush_embeds();
  commit(pending);
  store_->publish();
  report.seconds = seconds_since(t0);
  return report;
}

IndexReport Indexer::sync(const std::vector<std::string>& paths) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::string> roots = paths;
  if (roots.empty()) {
    auto j = nlohmann::json::parse(store_->catalog().meta("roots").value_or("[]"), nullptr, false);
    if (j.is_array())
      for (const auto& r : j)
        if (r.is_string()) roots.push_back(r.get<std::string>());
  }
  // Removals are committed first, so a file moved to a new path is re-added there.
  IndexReport report;
  ChangeSet gone;
  for (auto& item : store_->catalog().items("image")) {
    std::error_code ec;
    if (!fs::exists(item.path, ec)) gone.deletes.push_back(item);
  }
  report.removed = gone.deletes.size();
  commit(gone);
  store_->publish();
  std::vector<std::string> present;
  for (const auto& r : roots)
    if (fs::exists(r)) present.push_back(r);
  if (!present.empty()) merge(report, add_files(present));
  report.seconds = seconds_since(t0);
  return report;
}

IndexReport Indexer::remove(const std::vector<std::string>& paths) {
  const auto t0 = std::chrono::steady_clock::now();
  IndexReport report;
  ChangeSet changes;
  std::set<int64_t> seen;
  for (const auto& p : paths) {
    auto matched = store_->catalog().items("image", absolute_path(p));
    if (auto text = store_->catalog().item_by_path("text", p)) matched.push_back(*text);
    if (matched.empty())
      throw_error(ErrorKind::not_found, p + ": nothing indexed at this path or key");
    for (auto& item : matched)
      if (seen.insert(item.id).second) changes.deletes.push_back(item);
  }
  report.removed = changes.deletes.size();
  commit(changes);
  store_->publish();
  report.seconds = seconds_since(t0);
  return report;
}

}  // namespace mmfuse
