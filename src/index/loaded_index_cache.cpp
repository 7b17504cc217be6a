// load_shared_index: one process-wide map, folder/type -> the last file loaded.
#include "index/loaded_index_cache.h"

#include <sys/stat.h>

#include <map>
#include <mutex>
#include <string>

#include "mmfuse/error.h"

namespace mmfuse {

namespace {

struct FileIdentity {
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileIdentity&) const = default;
};

bool identify(const std::filesystem::path& path, FileIdentity* id) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  *id = {st.st_dev, st.st_ino, st.st_size,
         static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
  return true;
}

struct Entry {
  std::filesystem::path path;
  FileIdentity identity;
  std::shared_ptr<const VectorIndex> index;
};

std::mutex cache_mutex;
std::map<std::string, Entry>& cache() {
  static std::map<std::string, Entry> entries;
  return entries;
}

// "DIR/image" for DIR/image.<G>.faiss: the slot a newer generation replaces.
std::string slot_of(const std::filesystem::path& path) {
  const std::string name = path.filename().string();
  return (path.parent_path() / name.substr(0, name.find('.'))).string();
}

}  // namespace

std::shared_ptr<const VectorIndex> load_shared_index(const std::filesystem::path& path,
                                                     const IndexParams& params) {
  FileIdentity id;
  const bool exists = identify(path, &id);
  const std::string slot = slot_of(path);
  if (exists) {
    std::lock_guard lock(cache_mutex);
    auto it = cache().find(slot);
    if (it != cache().end() && it->second.path == path && it->second.identity == id)
      return it->second.index;
  }
  // Loaded outside the lock: other folders' readers need not wait for this one.
  auto loaded = std::make_shared<const VectorIndex>(VectorIndex::load(path, params));
  FileIdentity after;
  if (exists && identify(path, &after) && after == id) {
    std::lock_guard lock(cache_mutex);
    cache()[slot] = {path, id, loaded};
  }
  return loaded;
}

}  // namespace mmfuse
