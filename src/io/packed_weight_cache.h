// The packed-weight cache: a model's linear layers packed for oneDNN (f32,
// bf16 or int8) are written to a file on the first load and mapped read-only
// by later loads, which then skip quantising and packing (and share the pages
// between processes).
//
// Where: $MMFUSE_CACHE_DIR, else $XDG_CACHE_HOME/mmfuse/packed, else
// ~/.cache/mmfuse/packed. MMFUSE_WEIGHT_CACHE=0 (or off / false / no) turns it
// off (the CLI's --no-weight-cache sets it). Models under 16 MiB are not
// cached in the default folder (packing them takes milliseconds); with
// MMFUSE_CACHE_DIR set every model is.
//
// One file per (model folder, dtype, CPU ISA, oneDNN version, format
// version), named by a hash of those. Its key text also holds each weight
// file's size, modification time and the SHA-256 of its safetensors header:
// a weight file that changed makes the cache stale, and it is rebuilt in
// place. Hashing the whole weight file instead would cost ~0.3 s per GB on
// every load. Every layer is checked against its checksum before it is taken
// (all at once over the load's threads with verify_all(), else one by one in
// find()); a corrupt, truncated or stale file is reported in one warning line
// and rebuilt, never trusted. A folder that cannot be written only costs the
// cache (one warning).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/packed_gemm.h"
#include "io/packed_cache_file.h"

namespace mmfuse {

class MappedFile;
class ThreadPool;

struct PackedCacheSettings {
  bool enabled = false;
  std::filesystem::path dir;
  size_t min_model_bytes = 0;  // smaller models are not cached
  // From MMFUSE_WEIGHT_CACHE, MMFUSE_CACHE_DIR, XDG_CACHE_HOME and HOME.
  static PackedCacheSettings from_environment();
};

class PackedWeightCache {
 public:
  // The cache of the model whose weights are `weight_files` (its safetensors
  // files), packed with `dtype` as the model's precision. Maps the file if it
  // exists and its key matches; otherwise starts empty (stale or corrupt files
  // get one warning). Never throws for a cache problem.
  PackedWeightCache(const PackedCacheSettings& settings,
                    const std::vector<std::filesystem::path>& weight_files, Precision dtype);
  ~PackedWeightCache();

  // Checks every stored layer's checksum now, the layers handed out over
  // `pool`'s threads, with `alongside` (other loading work, e.g. reading the
  // tokenizer; it must not use this cache) run as one more task of the same
  // loop; find() then skips the hash of the layers found intact. A corrupt
  // layer is dropped here (one warning) and packed again. Rethrows what
  // `alongside` throws. A cache with no file just runs `alongside`.
  void verify_all(ThreadPool& pool, const std::function<void()>& alongside);

  // The layer `name` packed in `precision` with shape [out, in] from the
  // cache file, or null (not there, or its checksum fails: then a warning).
  std::shared_ptr<const PackedLinear> find(const std::string& name, int in, int out,
                                           Precision precision);
  // Records a layer of the model (found or freshly packed) for save().
  void add(const std::string& name, std::shared_ptr<const PackedLinear> packed);
  // Writes the file when a layer was packed anew (temp file + rename); a
  // failure is one warning line. Called once the model is loaded.
  void save();

  const std::filesystem::path& file() const { return file_; }
  size_t hits() const;
  size_t misses() const;

 private:
  void warn(const std::string& why) const;
  std::filesystem::path file_;
  std::string key_;
  mutable std::mutex mutex_;
  std::shared_ptr<MappedFile> mapped_;
  // The mapped file's layers, their indices by name, and whether each was
  // checked by verify_all() (kUnchecked, kIntact, kDropped in the .cpp).
  std::vector<PackedCacheLayer> stored_;
  std::unordered_map<std::string, size_t> stored_index_;
  std::vector<uint8_t> stored_state_;
  std::vector<std::pair<std::string, std::shared_ptr<const PackedLinear>>> layers_;
  size_t hits_ = 0, misses_ = 0;
  bool saved_ = false;
};

}  // namespace mmfuse
