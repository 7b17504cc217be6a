// Index folder: opening, the commit protocol and clean-up (see index_store.h).
#include "index/index_store.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "core/utc_time.h"
#include "index/loaded_index_cache.h"
#include "mmfuse/error.h"

namespace fs = std::filesystem;

namespace mmfuse {

namespace {

constexpr const char* kCatalogFile = "catalog.sqlite";
constexpr const char* kFormat = "1";

int type_slot(const std::string& type) {
  if (type == "image") return 0;
  if (type == "text") return 1;
  throw_error(ErrorKind::internal, "unknown item type " + type);
}

void fsync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// The kind to build for n items of a folder that asked for `requested`, whose
// index is now of kind `current` (none when empty).
IndexKind effective_kind(const std::string& requested, size_t n,
                         std::optional<IndexKind> current = std::nullopt) {
  if (requested == "auto") return auto_index_kind(n, current);
  const IndexKind k = parse_index_kind(requested, "index kind");
  if (k == IndexKind::ivf && n < 1000) return IndexKind::flat;  // too few points to train cells
  return k;
}

nlohmann::json params_json(const IndexParams& p) {
  return {{"hnsw_m", p.hnsw_m},
          {"ef_construction", p.ef_construction},
          {"ef_search", p.ef_search},
          {"ivf_nlist", p.ivf_nlist},
          {"ivf_nprobe", p.ivf_nprobe}};
}

IndexParams parse_params(const std::string& text, const std::string& field) {
  IndexParams p;
  try {
    auto j = nlohmann::json::parse(text);
    p.hnsw_m = j.value("hnsw_m", p.hnsw_m);
    p.ef_construction = j.value("ef_construction", p.ef_construction);
    p.ef_search = j.value("ef_search", p.ef_search);
    p.ivf_nlist = j.value("ivf_nlist", p.ivf_nlist);
    p.ivf_nprobe = j.value("ivf_nprobe", p.ivf_nprobe);
  } catch (const nlohmann::json::exception& e) {
    throw_error(ErrorKind::bad_input, field + ": " + e.what());
  }
  return p;
}

}  // namespace

void crash_point(const char* point) {
  static const char* want = std::getenv("MMFUSE_INDEX_CRASH_AT");
  if (want && std::strcmp(want, point) == 0) ::kill(::getpid(), SIGKILL);
}

std::unique_ptr<IndexStore> IndexStore::open_read(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw_error(ErrorKind::not_found, dir.string() + ": no such index folder");
  // A writer may replace the files between our snapshot and our read of them
  // (it deletes the old ones after its commit): then take a newer snapshot.
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<IndexStore> s(new IndexStore());
    s->dir_ = dir;
    s->files_dir_ = dir;
    s->catalog_ = std::make_unique<Catalog>(dir / kCatalogFile, false);
    s->catalog_->begin_read();
    if (!s->catalog_->has_schema() || !s->catalog_->meta("format"))
      throw_error(ErrorKind::not_found,
                  dir.string() + ": the index is empty (nothing was ever added)");
    s->load_settings();
    try {
      for (const char* t : kTypes) s->load_vectors(t);
      return s;
    } catch (const Error& e) {
      if (attempt >= 20) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

std::unique_ptr<IndexStore> IndexStore::open_write(const fs::path& dir, bool create) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    if (!create) throw_error(ErrorKind::not_found, dir.string() + ": no such index folder");
    fs::create_directories(dir, ec);
    if (ec)
      throw_error(ErrorKind::bad_input,
                  dir.string() + ": cannot create the index folder: " + ec.message());
  }
  std::unique_ptr<IndexStore> s(new IndexStore());
  s->dir_ = dir;
  s->files_dir_ = dir;
  s->writer_ = true;
  s->lock_fd_ = ::open((dir / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (s->lock_fd_ < 0)
    throw_error(ErrorKind::bad_input,
                (dir / "lock").string() + ": cannot create (read-only folder?)");
  // Released by the kernel if the process dies, so a killed writer never blocks the next.
  if (::flock(s->lock_fd_, LOCK_EX) != 0)
    throw_error(ErrorKind::internal, (dir / "lock").string() + ": flock failed");
  s->catalog_ = std::make_unique<Catalog>(dir / kCatalogFile, true);
  s->catalog_->create_schema();
  s->initialised_ = s->catalog_->meta("format").has_value();
  if (s->initialised_) s->load_settings();
  s->remove_unreferenced_files();
  return s;
}

IndexStore::~IndexStore() {
  if (catalog_ && !writer_) catalog_->rollback();  // ends the read snapshot
  catalog_.reset();
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void IndexStore::load_settings() {
  auto get = [&](const char* key) {
    auto v = catalog_->meta(key);
    if (!v)
      throw_error(ErrorKind::bad_input,
                  (dir_ / kCatalogFile).string() + ": meta \"" + key + "\" missing");
    return *v;
  };
  MMFUSE_CHECK(get("format") == kFormat, unsupported,
               (dir_ / kCatalogFile).string() + ": index format " + get("format") +
                   " (this mmfuse reads " + kFormat + ")");
  settings_.model_name = get("model_name");
  settings_.model_path = get("model_path");
  settings_.model_id = get("model_id");
  settings_.dim = std::stoi(get("dim"));
  settings_.kind = get("kind");
  settings_.params = parse_params(get("params"), (dir_ / kCatalogFile).string() + ": meta params");
  generation_ = std::stoll(get("generation"));
  initialised_ = true;
}

void IndexStore::initialise(const IndexSettings& settings) {
  MMFUSE_ASSERT(writer_ && !initialised_);
  effective_kind(settings.kind, 0);  // validates the name
  WriteTransaction tx(*catalog_);
  catalog_->set_meta("format", kFormat);
  catalog_->set_meta("model_name", settings.model_name);
  catalog_->set_meta("model_path", settings.model_path);
  catalog_->set_meta("model_id", settings.model_id);
  catalog_->set_meta("dim", std::to_string(settings.dim));
  catalog_->set_meta("kind", settings.kind);
  catalog_->set_meta("params", params_json(settings.params).dump());
  catalog_->set_meta("generation", "0");
  catalog_->set_meta("created_at", iso8601_utc_seconds(unix_time_ms()));
  tx.commit();
  load_settings();
}

void IndexStore::load_vectors(const std::string& type) {
  const int slot = type_slot(type);
  if (loaded_[slot]) return;
  auto file = catalog_->meta(std::string("file.") + type);
  owned_[slot].reset();
  view_[slot].reset();
  if (file) {
    const fs::path path = files_dir_ / *file;
    if (!fs::exists(path))
      throw_error(ErrorKind::internal,
                  path.string() + ": index file named by the catalogue is missing");
    IndexParams p = settings_.params;
    if (auto stored = catalog_->meta(std::string("params.") + type))
      p = parse_params(*stored, "meta params." + type);
    if (writer_) {
      owned_[slot] = std::make_shared<VectorIndex>(VectorIndex::load(path, p));
      view_[slot] = owned_[slot];
    } else {
      view_[slot] = load_shared_index(path, p);
    }
    MMFUSE_CHECK(view_[slot]->dim() == settings_.dim, bad_input,
                 path.string() + ": dimension " + std::to_string(view_[slot]->dim()) +
                     ", catalogue says " + std::to_string(settings_.dim));
  }
  loaded_[slot] = true;
}

const VectorIndex* IndexStore::vectors(const std::string& type) {
  load_vectors(type);
  return view_[type_slot(type)].get();
}

std::string IndexStore::built_kind(const std::string& type) {
  const VectorIndex* v = vectors(type);
  return v ? to_string(v->params().kind) : "";
}

void IndexStore::commit(const ChangeSet& changes, int threads) {
  MMFUSE_ASSERT(writer_ && initialised_);
  if (changes.empty()) return;
  const size_t dim = static_cast<size_t>(settings_.dim);
  MMFUSE_ASSERT(changes.insert_vectors.size() == changes.inserts.size() * dim);
  for (const char* t : kTypes) load_vectors(t);
  const int64_t next_gen = generation_ + 1;
  std::vector<std::string> written;
  try {
    WriteTransaction tx(*catalog_);
    std::vector<int64_t> new_ids[2], gone_ids[2];
    std::vector<float> new_vectors[2];
    for (const auto& d : changes.deletes) {
      catalog_->delete_item(d.id);
      gone_ids[type_slot(d.type)].push_back(d.id);
    }
    for (const auto& t : changes.touches) catalog_->touch_item(t.id, t.size, t.mtime);
    for (const auto& [id, caption] : changes.captions) catalog_->set_caption(id, caption);
    for (size_t i = 0; i < changes.inserts.size(); ++i) {
      const ItemRecord& item = changes.inserts[i];
      const float* v = changes.insert_vectors.data() + i * dim;
      // Every item's vector is in the cache, so any index can be rebuilt from the catalogue.
      catalog_->put_embedding(settings_.model_id, item.hash, v, dim);
      const int slot = type_slot(item.type);
      new_ids[slot].push_back(catalog_->insert_item(item));
      new_vectors[slot].insert(new_vectors[slot].end(), v, v + dim);
    }
    crash_point("rows_written");
    for (const char* type : kTypes) {
      const int slot = type_slot(type);
      if (new_ids[slot].empty() && gone_ids[slot].empty()) continue;
      const size_t n = catalog_->count(type);
      auto& vi = owned_[slot];
      const IndexKind want = effective_kind(
          settings_.kind, n, vi ? std::optional<IndexKind>(vi->params().kind) : std::nullopt);
      loaded_[slot] = false;  // until committed, the in-memory index may not match any state
      bool rebuild = !vi || vi->params().kind != want || !vi->remove(gone_ids[slot]);
      if (!rebuild)
        vi->add(new_ids[slot].data(), new_vectors[slot].data(), new_ids[slot].size(), threads);
      if (rebuild) {
        std::vector<int64_t> ids;
        std::vector<float> vecs;
        catalog_->item_vectors(type, settings_.model_id, dim, &ids, &vecs);
        MMFUSE_ASSERT(ids.size() == n);
        IndexParams p = settings_.params;
        p.kind = want;
        vi = std::make_shared<VectorIndex>(
            VectorIndex::build(settings_.dim, p, ids.data(), vecs.data(), ids.size(), threads));
      }
      view_[slot] = vi;
      MMFUSE_ASSERT(vi->size() == n);
      const std::string name = std::string(type) + "." + std::to_string(next_gen) + ".faiss";
      const fs::path tmp = dir_ / (name + ".tmp");
      vi->save(tmp);
      crash_point("tmp_written");
      fs::rename(tmp, dir_ / name);
      written.push_back(name);
      catalog_->set_meta(std::string("file.") + type, name);
      catalog_->set_meta(std::string("params.") + type, params_json(vi->params()).dump());
      catalog_->set_meta(std::string("count.") + type, std::to_string(n));
    }
    fsync_dir(dir_);
    crash_point("files_renamed");
    catalog_->set_meta("generation", std::to_string(next_gen));
    tx.commit();
    crash_point("committed");
  } catch (...) {
    // The transaction rolled back: drop what this attempt wrote and reload from disk.
    for (const auto& name : written) fs::remove(dir_ / name);
    for (int s = 0; s < 2; ++s) {
      owned_[s].reset();
      view_[s].reset();
      loaded_[s] = false;
    }
    throw;
  }
  generation_ = next_gen;
  for (int s = 0; s < 2; ++s) loaded_[s] = true;
  remove_unreferenced_files();
}

void IndexStore::remove_unreferenced_files() {
  std::set<std::string> keep;
  for (const char* t : kTypes)
    if (auto f = catalog_->meta(std::string("file.") + t)) keep.insert(*f);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    const bool ours = name.ends_with(".faiss") || name.ends_with(".faiss.tmp");
    if (ours && !keep.count(name)) fs::remove(e.path(), ec);
  }
}

uint64_t IndexStore::disk_bytes() const {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec))
    if (e.is_regular_file()) total += e.file_size(ec);
  return total;
}

}  // namespace mmfuse
