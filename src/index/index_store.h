// An index folder: the SQLite catalogue (catalog.sqlite) plus one FAISS file per
// item type (image.<G>.faiss, text.<G>.faiss), where G is the generation of the
// commit that wrote it. The catalogue's meta table names the current files, so
// the commit protocol below leaves the folder in the old or the new state
// whatever moment a process is killed at:
//
//   1. the new FAISS file is written as NAME.tmp, fsynced, renamed to NAME
//      (a name no committed state refers to), and the folder is fsynced;
//   2. one SQLite transaction inserts/deletes the item rows and points
//      meta file.<type> at NAME; COMMIT makes it durable;
//   3. files no committed state names are deleted (also on the next writer's open,
//      which clears what a killed writer left).
//
// Readers take a snapshot (a read transaction) and load the files it names, so
// searches never block on, or see half of, a running add. Writers are
// serialised by an flock on DIR/lock.
//
// Read replicas (serve with index.read_only) do not touch DIR itself: they read
// DIR/published/, which the writer fills after each add (once the folder exists,
// see publish()) with files that never change once written:
//
//   published/catalog.<G>.sqlite   meta, items and captions of generation G
//   published/<type>.<G'>.faiss    hard links to the FAISS files it names
//   published/CURRENT              "catalog.<G>.sqlite", replaced atomically last
//
// so a replica (on a read-only mount, or a copy synced from object storage that
// copies CURRENT last) never sees half of a generation.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "index/catalog.h"
#include "index/vector_index.h"

namespace mmfuse {

// What an index folder was built with (the catalogue's meta table).
struct IndexSettings {
  std::string model_name;  // the model folder's name
  std::string model_path;  // absolute path of the model folder
  std::string model_id;    // model_fingerprint() of that folder
  int dim = 0;
  std::string kind = "auto";  // requested: auto, flat, hnsw or ivf
  IndexParams params;         // build and search parameters
};

// Item changes applied by one commit.
struct ChangeSet {
  std::vector<ItemRecord> inserts;    // id is assigned by the commit
  std::vector<float> insert_vectors;  // inserts.size() * dim, unit length
  std::vector<ItemRecord> deletes;    // by id (type says which FAISS index)
  std::vector<ItemRecord> touches;    // same content, new size/mtime
  // Captions given to items already in the catalogue (by id); new items carry
  // theirs in ItemRecord::caption.
  std::vector<std::pair<int64_t, std::string>> captions;
  bool empty() const {
    return inserts.empty() && deletes.empty() && touches.empty() && captions.empty();
  }
};

class IndexStore {
 public:
  static constexpr const char* kTypes[2] = {"image", "text"};

  // A consistent snapshot for searching. Throws Error(not_found) if DIR holds no index.
  static std::unique_ptr<IndexStore> open_read(const std::filesystem::path& dir);
  // The generation DIR/published/CURRENT names, opened read-only (a replica).
  // Throws Error(not_found) when nothing was published yet.
  static std::unique_ptr<IndexStore> open_published(const std::filesystem::path& dir);
  // What DIR/published/CURRENT says ("" when absent): cheap, for polling.
  static std::string published_marker(const std::filesystem::path& dir);
  // The single writer: waits for DIR/lock, creates DIR if `create`.
  static std::unique_ptr<IndexStore> open_write(const std::filesystem::path& dir, bool create);
  ~IndexStore();

  const std::filesystem::path& dir() const { return dir_; }
  bool initialised() const { return initialised_; }
  // Records the model and kind of a new index (writer, before the first commit).
  void initialise(const IndexSettings& settings);
  const IndexSettings& settings() const { return settings_; }
  Catalog& catalog() { return *catalog_; }
  int64_t generation() const { return generation_; }

  // The FAISS index of "image" or "text" items (null when there are none yet).
  const VectorIndex* vectors(const std::string& type);
  // Kind actually built for `type` ("flat", "hnsw", "ivf"; "" when empty).
  std::string built_kind(const std::string& type);

  // Applies the changes as one new generation (see the protocol above).
  void commit(const ChangeSet& changes, int threads);
  // A store over the same published generation with its own catalogue
  // connection (one per thread): the loaded FAISS indexes are shared.
  std::unique_ptr<IndexStore> same_generation() const;
  // Writer: makes the committed generation what DIR/published/CURRENT names
  // (no-op when it already is), then drops published generations older than
  // the previous one. `force` creates DIR/published; without it, only a folder
  // already published is (so replicas keep up once publishing was switched on).
  void publish(bool force = false);
  // Bytes of the catalogue and index files.
  uint64_t disk_bytes() const;

 private:
  IndexStore() = default;
  void load_settings();
  void load_vectors(const std::string& type);
  void remove_unreferenced_files();

  std::filesystem::path dir_;
  std::filesystem::path files_dir_;  // where the FAISS files are: dir_, or dir_/published
  std::unique_ptr<Catalog> catalog_;
  bool writer_ = false;
  int lock_fd_ = -1;
  bool initialised_ = false;
  IndexSettings settings_;
  int64_t generation_ = 0;
  // The writer's own, mutable indexes; readers share loaded files
  // (load_shared_index). `view_` is what vectors() returns in both cases.
  std::shared_ptr<VectorIndex> owned_[2];
  std::shared_ptr<const VectorIndex> view_[2];
  bool loaded_[2] = {false, false};
};

// Test hook: when MMFUSE_INDEX_CRASH_AT names `point`, the process dies there
// (as kill -9 would), so tests can hit every step of the commit protocol.
void crash_point(const char* point);

}  // namespace mmfuse
