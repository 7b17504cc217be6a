// Adding to and removing from an index folder: walks folders for images, hashes
// and embeds them in batches on the given thread pool, skips content already
// indexed, reports corrupt or unreadable files by path and carries on, and
// commits every `commit_every` items (so a killed run keeps what it committed).
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/precision.h"
#include "index/index_store.h"
#include "models/clip.h"
#include "models/dual_encoder.h"
#include "vision/image.h"

namespace mmfuse {

struct IndexOptions {
  std::string model_dir;      // required for a new index; checked against an existing one
  std::string kind = "auto";  // new index only: auto, flat, hnsw, ivf
  IndexParams params;         // new index only
  size_t batch = 32;          // images embedded per model call
  size_t commit_every = 1024;
  bool progress = true;  // progress on stderr
  // The cores embedding and index builds use (null: a pool of all cores).
  std::shared_ptr<ThreadPool> pool;
  // The model's arithmetic (--dtype); the index itself stores float32 vectors.
  Precision precision = Precision::f32;
  // When set, every image item added gets a caption (stored with the item, in
  // the same commit), and items already indexed without one get one too. The
  // CLI builds it from a generative model (`--caption-model`). Called from one
  // thread at a time; an exception it throws fails that file only.
  std::function<std::string(const std::string& path, const Image& image)> caption;
};

struct IndexFailure {
  std::string path;
  std::string error;
};

struct IndexReport {
  size_t added = 0, skipped = 0, failed = 0, removed = 0;
  size_t captioned = 0;  // items given a caption (new ones and earlier ones that had none)
  std::vector<IndexFailure> failures;
  double seconds = 0;
};

// Image files (jpg, jpeg, png, webp, bmp, any case) under the folders, recursively;
// files named directly are kept whatever their extension. Absolute, sorted,
// unique. Throws Error(not_found) for a path that does not exist.
std::vector<std::string> list_image_files(const std::vector<std::string>& paths);

class Indexer {
 public:
  // Opens (creating when a model is given) the index folder as its one writer.
  Indexer(const std::filesystem::path& index_dir, IndexOptions options);
  ~Indexer();

  IndexReport add_files(const std::vector<std::string>& paths);
  // One text per line, or JSON lines {"id": ..., "text": ...} (id optional).
  IndexReport add_texts(const std::string& file);
  // Removes items whose files are gone, then adds new and changed files under
  // `paths` (default: the folders earlier adds were given).
  IndexReport sync(const std::vector<std::string>& paths);
  // Removes image items at or under each path, and text items with that key.
  IndexReport remove(const std::vector<std::string>& paths);

  IndexStore& store() { return *store_; }

 private:
  DualEncoder& model();
  void commit(ChangeSet& pending);
  void remember_roots(const std::vector<std::string>& paths);

  IndexOptions options_;
  std::shared_ptr<ThreadPool> pool_;
  std::unique_ptr<IndexStore> store_;
  std::unique_ptr<DualEncoder> model_;
};

}  // namespace mmfuse
