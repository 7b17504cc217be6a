// Published generations for read replicas (see index_store.h): the writer's
// publish() and the replicas' open_published() / same_generation().
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "index/index_store.h"
#include "index/loaded_index_cache.h"
#include "io/atomic_file.h"
#include "mmfuse/error.h"

namespace fs = std::filesystem;

namespace mmfuse {

namespace {

constexpr const char* kPublished = "published";
constexpr const char* kMarker = "CURRENT";

void fsync_path(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// "catalog.<G>.sqlite" -> G (-1 when the name is not one).
int64_t catalog_generation(const std::string& name) {
  if (!name.starts_with("catalog.") || !name.ends_with(".sqlite")) return -1;
  const std::string digits = name.substr(8, name.size() - 8 - 7);
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoll(digits);
}

// The FAISS files a published catalogue names.
std::set<std::string> files_named_by(const fs::path& catalog_file) {
  std::set<std::string> names;
  Catalog c(catalog_file, Catalog::Snapshot{});
  for (const char* t : IndexStore::kTypes)
    if (auto f = c.meta(std::string("file.") + t)) names.insert(*f);
  return names;
}

}  // namespace

std::string IndexStore::published_marker(const fs::path& dir) {
  std::ifstream in(dir / kPublished / kMarker);
  std::string line;
  if (!in || !std::getline(in, line)) return "";
  return line;
}

std::unique_ptr<IndexStore> IndexStore::open_published(const fs::path& dir) {
  const fs::path pub = dir / kPublished;
  // The writer may publish twice between our read of CURRENT and our open of
  // what it named (older generations are deleted): then read CURRENT again.
  for (int attempt = 0;; ++attempt) {
    const std::string name = published_marker(dir);
    if (name.empty())
      throw_error(ErrorKind::not_found, (pub / kMarker).string() +
                                            ": nothing published yet (the writer publishes "
                                            "after its next add, or `mmfuse index publish`)");
    MMFUSE_CHECK(catalog_generation(name) >= 0, bad_input,
                 (pub / kMarker).string() + ": \"" + name + "\" is not a published catalogue name");
    try {
      std::unique_ptr<IndexStore> s(new IndexStore());
      s->dir_ = dir;
      s->files_dir_ = pub;
      s->catalog_ = std::make_unique<Catalog>(pub / name, Catalog::Snapshot{});
      s->load_settings();
      for (const char* t : kTypes) s->load_vectors(t);
      return s;
    } catch (const Error&) {
      if (attempt >= 20) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

std::unique_ptr<IndexStore> IndexStore::same_generation() const {
  MMFUSE_ASSERT(!writer_ && loaded_[0] && loaded_[1]);
  std::unique_ptr<IndexStore> s(new IndexStore());
  s->dir_ = dir_;
  s->files_dir_ = files_dir_;
  s->catalog_ = std::make_unique<Catalog>(catalog_->file(), Catalog::Snapshot{});
  s->initialised_ = initialised_;
  s->settings_ = settings_;
  s->generation_ = generation_;
  for (int i = 0; i < 2; ++i) {
    s->view_[i] = view_[i];
    s->loaded_[i] = true;
  }
  return s;
}

void IndexStore::publish(bool force) {
  MMFUSE_ASSERT(writer_);
  const fs::path pub = dir_ / kPublished;
  std::error_code ec;
  if (!fs::is_directory(pub, ec)) {
    if (!force) return;
    fs::create_directories(pub, ec);
    if (ec) throw_error(ErrorKind::bad_input, pub.string() + ": cannot create: " + ec.message());
  }
  if (!initialised_) {
    MMFUSE_CHECK(!force, bad_input, dir_.string() + ": the index is empty (nothing to publish)");
    return;
  }
  const std::string name = "catalog." + std::to_string(generation_) + ".sqlite";
  if (published_marker(dir_) == name && fs::exists(pub / name)) return;
  // What a killed publish left (never named by CURRENT).
  for (const auto& e : fs::directory_iterator(pub, ec))
    if (e.path().extension() == ".tmp") fs::remove(e.path(), ec);
  // 1. The FAISS files: links to the committed, never rewritten files (a copy
  //    where the file system has no hard links).
  for (const char* t : kTypes) {
    auto file = catalog_->meta(std::string("file.") + t);
    if (!file || fs::exists(pub / *file)) continue;
    const fs::path tmp = pub / (*file + ".tmp");
    fs::create_hard_link(dir_ / *file, tmp, ec);
    if (ec) {
      fs::copy_file(dir_ / *file, tmp, ec);
      if (ec)
        throw_error(ErrorKind::internal,
                    (pub / *file).string() + ": cannot publish: " + ec.message());
      fsync_path(tmp, false);
    }
    fs::rename(tmp, pub / *file);
  }
  // 2. The catalogue, then 3. the marker naming it: the one atomic switch.
  const fs::path tmp = pub / (name + ".tmp");
  catalog_->write_snapshot(tmp);
  fsync_path(tmp, false);
  fs::rename(tmp, pub / name);
  fsync_path(pub, true);
  crash_point("published_unmarked");
  write_file_atomic(pub / kMarker, name + "\n");
  fsync_path(pub, true);
  // Keep the previous generation too: a replica that read the old CURRENT just
  // before the switch can still open what it named.
  std::vector<std::pair<int64_t, std::string>> catalogs;
  for (const auto& e : fs::directory_iterator(pub, ec)) {
    const std::string n = e.path().filename().string();
    if (int64_t g = catalog_generation(n); g >= 0) catalogs.emplace_back(g, n);
  }
  std::sort(catalogs.rbegin(), catalogs.rend());
  std::set<std::string> keep = {kMarker};
  for (size_t i = 0; i < catalogs.size(); ++i) {
    if (i < 2 && catalogs[i].first <= generation_) {
      keep.insert(catalogs[i].second);
      for (const auto& f : files_named_by(pub / catalogs[i].second)) keep.insert(f);
    }
  }
  for (const auto& e : fs::directory_iterator(pub, ec)) {
    const std::string n = e.path().filename().string();
    if (!keep.count(n) && (n.ends_with(".faiss") || catalog_generation(n) >= 0))
      fs::remove(e.path(), ec);
  }
}

}  // namespace mmfuse
