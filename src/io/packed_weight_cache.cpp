#include "io/packed_weight_cache.h"

#include <oneapi/dnnl/dnnl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "core/strings.h"
#include "io/digest.h"
#include "io/safetensors.h"
#include "mmfuse/error.h"
#include "mmfuse/thread_pool.h"

namespace mmfuse {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFormat = "mmfuse packed-weight cache v2";
constexpr size_t kDefaultMinModelBytes = 16u << 20;
// stored_state_ values.
constexpr uint8_t kUnchecked = 0, kIntact = 1, kDropped = 2;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

// The SHA-256 of a safetensors file's header (length prefix and JSON): the
// tensor names, dtypes, shapes and offsets, without reading the data.
std::string header_digest(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  uint8_t prefix[8] = {};
  in.read(reinterpret_cast<char*>(prefix), 8);
  MMFUSE_CHECK(in.gcount() == 8, bad_input, path.string() + ": truncated safetensors file");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | prefix[i];
  MMFUSE_CHECK(n <= (100u << 20), bad_input, path.string() + ": bad safetensors header length");
  std::string header(static_cast<size_t>(n), '\0');
  in.read(header.data(), static_cast<std::streamsize>(n));
  MMFUSE_CHECK(static_cast<uint64_t>(in.gcount()) == n, bad_input,
               path.string() + ": truncated safetensors header");
  Digest d = Digest::sha256();
  d.update(prefix, 8);
  d.update(header.data(), header.size());
  return d.hex();
}

std::string onednn_version() {
  const dnnl_version_t* v = dnnl_version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
         std::to_string(v->patch) + "+" + v->hash;
}

}  // namespace

PackedCacheSettings PackedCacheSettings::from_environment() {
  PackedCacheSettings s;
  const std::string off = ascii_lower(env("MMFUSE_WEIGHT_CACHE"));
  if (off == "0" || off == "off" || off == "false" || off == "no") return s;
  if (const std::string dir = env("MMFUSE_CACHE_DIR"); !dir.empty()) {
    s.dir = dir;
  } else {
    s.min_model_bytes = kDefaultMinModelBytes;
    if (const std::string xdg = env("XDG_CACHE_HOME"); !xdg.empty()) {
      s.dir = fs::path(xdg) / "mmfuse" / "packed";
    } else if (const std::string home = env("HOME"); !home.empty()) {
      s.dir = fs::path(home) / ".cache" / "mmfuse" / "packed";
    } else {
      return s;
    }
  }
  s.enabled = true;
  return s;
}

PackedWeightCache::PackedWeightCache(const PackedCacheSettings& settings,
                                     const std::vector<fs::path>& weight_files, Precision dtype) {
  // Which file: the model's folder(s), dtype, CPU ISA and library versions.
  std::string where = std::string(kFormat) + "\ndtype " + to_string(dtype) + "\nisa " +
                      compute_isa() + "\nonednn " + onednn_version() + "\n";
  key_ = where;
  try {
    for (const fs::path& f : weight_files) {
      const fs::path path = fs::canonical(f);
      struct stat st {};
      MMFUSE_CHECK(::stat(path.c_str(), &st) == 0, not_found, path.string() + ": cannot stat");
      where += "file " + path.string() + "\n";
      key_ += "file " + path.string() + " size " + std::to_string(st.st_size) + " mtime " +
              std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) +
              " header-sha256 " + header_digest(path) + "\n";
    }
  } catch (const std::exception& e) {
    warn(std::string("cannot key the cache: ") + e.what());
    return;
  }
  std::error_code ec;
  file_ = settings.dir / (sha256_hex(where.data(), where.size()).substr(0, 32) + "-" +
                          to_string(dtype) + ".mmpack");
  if (!fs::exists(file_, ec)) return;
  try {
    mapped_ = MappedFile::open(file_);
    PackedCacheIndex index = parse_packed_cache(mapped_->data(), mapped_->size(), file_.string());
    if (index.key != key_) {
      warn("stale (the weight files, CPU or library changed); packing again");
      mapped_.reset();
      return;
    }
    // Every byte is about to be hashed: have the kernel read ahead what is
    // not in the page cache yet.
    ::madvise(const_cast<uint8_t*>(mapped_->data()), mapped_->size(), MADV_WILLNEED);
    stored_ = std::move(index.layers);
    stored_state_.assign(stored_.size(), kUnchecked);
    for (size_t i = 0; i < stored_.size(); ++i) stored_index_[stored_[i].name] = i;
  } catch (const std::exception& e) {
    warn(std::string(e.what()) + "; packing again");
    mapped_.reset();
    stored_.clear();
    stored_index_.clear();
    stored_state_.clear();
  }
}

PackedWeightCache::~PackedWeightCache() = default;

void PackedWeightCache::warn(const std::string& why) const {
  std::fprintf(stderr, "mmfuse: warning: packed-weight cache %s: %s\n",
               file_.empty() ? "" : file_.c_str(), why.c_str());
}

void PackedWeightCache::verify_all(ThreadPool& pool, const std::function<void()>& alongside) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (stored_.empty()) {
    if (alongside) alongside();
    return;
  }
  // Task 0 is `alongside`, handed out first so that it overlaps the hashing;
  // every other task writes only its own layer's state byte.
  pool.parallel_tasks(stored_.size() + 1, [&](size_t task, int) {
    if (task == 0) {
      if (alongside) alongside();
      return;
    }
    const size_t i = task - 1;
    if (stored_state_[i] == kUnchecked)
      stored_state_[i] = packed_layer_intact(mapped_->data(), stored_[i]) ? kIntact : kDropped;
  });
  for (size_t i = 0; i < stored_.size(); ++i)
    if (stored_state_[i] == kDropped)
      warn("layer \"" + stored_[i].name + "\" fails its checksum (corrupt); packing it again");
}

std::shared_ptr<const PackedLinear> PackedWeightCache::find(const std::string& name, int in,
                                                            int out, Precision precision) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = stored_index_.find(name);
  if (it == stored_index_.end() || stored_state_[it->second] == kDropped) {
    ++misses_;
    return nullptr;
  }
  const PackedCacheLayer& layer = stored_[it->second];
  uint8_t& state = stored_state_[it->second];
  try {
    MMFUSE_CHECK(layer.in == in && layer.out == out && layer.precision == precision, bad_input,
                 "layer \"" + name + "\" has another shape or precision");
    const std::vector<size_t> sizes = PackedLinear::packed_slice_bytes(in, out, precision);
    MMFUSE_CHECK(sizes.size() == layer.slices.size(), bad_input,
                 "layer \"" + name + "\" has another slice count");
    for (size_t s = 0; s < sizes.size(); ++s)
      MMFUSE_CHECK(sizes[s] == layer.slices[s].second, bad_input,
                   "layer \"" + name + "\" has another packed size");
    MMFUSE_CHECK(state == kIntact || packed_layer_intact(mapped_->data(), layer), bad_input,
                 "layer \"" + name + "\" fails its checksum (corrupt)");
    PackedLinear::Stored stored;
    for (const auto& [offset, bytes] : layer.slices) stored.slices.push_back(mapped_->data() + offset);
    if (precision == Precision::int8) {
      stored.scale = reinterpret_cast<const float*>(mapped_->data() + layer.scale);
      stored.sums = reinterpret_cast<const int32_t*>(mapped_->data() + layer.sums);
    }
    stored.keep_alive = mapped_;
    auto packed = PackedLinear::from_stored(in, out, precision, stored);
    ++hits_;
    return packed;
  } catch (const std::exception& e) {
    warn(std::string(e.what()) + "; packing it again");
    state = kDropped;
    ++misses_;
    return nullptr;
  }
}

void PackedWeightCache::add(const std::string& name, std::shared_ptr<const PackedLinear> packed) {
  std::lock_guard<std::mutex> lock(mutex_);
  layers_.emplace_back(name, std::move(packed));
}

void PackedWeightCache::save() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (file_.empty() || saved_ || misses_ == 0 || layers_.empty()) return;
  saved_ = true;
  try {
    std::error_code ec;
    fs::create_directories(file_.parent_path(), ec);
    std::vector<std::pair<std::string, const PackedLinear*>> layers;
    for (const auto& [name, p] : layers_) layers.emplace_back(name, p.get());
    write_packed_cache(file_, key_, layers);
  } catch (const std::exception& e) {
    warn(std::string(e.what()) + "; the next load packs again");
  }
}

size_t PackedWeightCache::hits() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return hits_;
}

size_t PackedWeightCache::misses() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return misses_;
}

}  // namespace mmfuse
