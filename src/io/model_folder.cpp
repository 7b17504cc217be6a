#include "io/model_folder.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "core/q8_0.h"
#include "io/packed_weight_cache.h"
#include "mmfuse/error.h"

namespace mmfuse {

namespace fs = std::filesystem;

nlohmann::json read_json_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw_error(fs::exists(path) ? ErrorKind::bad_input : ErrorKind::not_found,
                path.string() + ": cannot read (missing file?)");
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  try {
    return nlohmann::json::parse(buffer.str());
  } catch (const nlohmann::json::exception& e) {
    throw_error(ErrorKind::bad_input, path.string() + ": invalid JSON: " + e.what());
  }
}

bool JsonFields::has(const std::string& key) const {
  return object_.is_object() && object_.contains(key) && !object_[key].is_null();
}

int JsonFields::positive(const std::string& key, int fallback) const {
  const int64_t v = integer(key, fallback);
  MMFUSE_CHECK(v > 0 && v < (int64_t{1} << 30), bad_input,
               where_ + ": field \"" + key + "\" must be a positive integer");
  return static_cast<int>(v);
}

int32_t JsonFields::token_id(const std::string& key, int32_t fallback, int64_t vocab_size) const {
  const int64_t v = integer(key, fallback);
  MMFUSE_CHECK(v >= -1 && v < vocab_size, bad_input,
               where_ + ": field \"" + key + "\" is not a token id of the vocabulary");
  return static_cast<int32_t>(v);
}

std::vector<int32_t> JsonFields::token_ids(const std::string& key, std::vector<int32_t> fallback,
                                           int64_t vocab_size) const {
  if (!object_.is_object() || !object_.contains(key)) return fallback;
  const nlohmann::json& j = object_[key];
  if (j.is_null()) return {};
  const nlohmann::json list = j.is_array() ? j : nlohmann::json::array({j});
  std::vector<int32_t> out;
  for (const auto& v : list) {
    MMFUSE_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() < vocab_size,
                 bad_input, where_ + ": field \"" + key + "\" must be token ids of the vocabulary");
    out.push_back(static_cast<int32_t>(v.get<int64_t>()));
  }
  return out;
}

int64_t JsonFields::integer(const std::string& key, int64_t fallback) const {
  if (!has(key)) return fallback;
  const auto& v = object_[key];
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return static_cast<int64_t>(v.get<uint64_t>());
  } else if (v.is_number_integer()) {
    return v.get<int64_t>();
  } else if (v.is_number_float()) {
    // 3.0 counts as 3; the range check ([-2^63, 2^63), which also excludes
    // infinities) comes first because casting an out-of-range double to int64
    // is undefined behaviour.
    const double d = v.get<double>();
    if (std::floor(d) == d && d >= -0x1p63 && d < 0x1p63) return static_cast<int64_t>(d);
  }
  throw_error(ErrorKind::bad_input, where_ + ": field \"" + key + "\" must be an integer");
}

double JsonFields::number(const std::string& key, double fallback) const {
  if (!has(key)) return fallback;
  const auto& v = object_[key];
  MMFUSE_CHECK(v.is_number(), bad_input, where_ + ": field \"" + key + "\" must be a number");
  return v.get<double>();
}

bool JsonFields::boolean(const std::string& key, bool fallback) const {
  if (!has(key)) return fallback;
  const auto& v = object_[key];
  MMFUSE_CHECK(v.is_boolean(), bad_input, where_ + ": field \"" + key + "\" must be true or false");
  return v.get<bool>();
}

std::string JsonFields::string(const std::string& key, const std::string& fallback) const {
  if (!has(key)) return fallback;
  const auto& v = object_[key];
  MMFUSE_CHECK(v.is_string(), bad_input, where_ + ": field \"" + key + "\" must be a string");
  return v.get<std::string>();
}

std::shared_ptr<WeightStore> WeightStore::open_folder(const fs::path& dir, FileResidency residency) {
  auto store = std::make_shared<WeightStore>();
  const fs::path single = dir / "model.safetensors";
  const fs::path index = dir / "model.safetensors.index.json";
  std::vector<fs::path> shards;
  if (fs::exists(single)) {
    shards.push_back(single);
  } else if (fs::exists(index)) {
    nlohmann::json j = read_json_file(index);
    MMFUSE_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(),
                 bad_input, index.string() + ": missing \"weight_map\" object");
    std::set<std::string> names;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      MMFUSE_CHECK(it.value().is_string(), bad_input,
                   index.string() + ": weight_map[\"" + it.key() + "\"] must be a file name");
      std::string file = it.value().get<std::string>();
      MMFUSE_CHECK(file.find('/') == std::string::npos && file.find("..") == std::string::npos,
                   bad_input,
                   index.string() + ": shard name \"" + file + "\" must be a plain file name");
      names.insert(file);
    }
    for (const auto& n : names) shards.push_back(dir / n);
  } else {
    throw_error(ErrorKind::not_found, dir.string() +
                                          ": no model.safetensors or model.safetensors.index.json "
                                          "(only safetensors weights are supported)");
  }
  for (const auto& path : shards) {
    store->files_.push_back(SafetensorsFile::open(path, residency));
    const size_t idx = store->files_.size() - 1;
    for (const auto& [name, info] : store->files_.back().tensors()) {
      MMFUSE_CHECK(!store->owner_.count(name), bad_input,
                   path.string() + ": tensor \"" + name + "\" also appears in another shard");
      store->owner_[name] = idx;
      store->total_bytes_ += info.nbytes;
    }
  }
  return store;
}

bool WeightStore::has(const std::string& name) const {
  return owner_.count(name) != 0;
}

std::string WeightStore::describe_source(const std::string& name) const {
  auto it = owner_.find(name);
  if (it != owner_.end()) return files_[it->second].name();
  if (files_.size() == 1) return files_[0].name();
  return files_.empty() ? std::string("weights")
                        : fs::path(files_[0].name()).parent_path().string();
}

const TensorInfo& WeightStore::info(const std::string& name) const {
  auto it = owner_.find(name);
  if (it == owner_.end())
    throw_error(ErrorKind::bad_input, describe_source(name) + ": missing tensor \"" + name + "\"");
  return *files_[it->second].find(name);
}

FileResidency decoder_weight_residency(Precision precision) {
  return precision == Precision::int8 ? FileResidency::mapped : streamed_weight_residency();
}

void WeightStore::set_decoder_precision(Precision precision, std::shared_ptr<ThreadPool> pool) {
  MMFUSE_CHECK(precision != Precision::bf16, unsupported,
               "decoders keep their stored F16/BF16 weights or take 8-bit ones: --dtype f32 or "
               "int8 (bf16 is for the encoder models)");
  decoder_precision_ = precision;
  quantize_pool_ = std::move(pool);
}

TypedLinear WeightStore::typed_linear(const std::string& module, int in, int out,
                                      bool with_bias) {
  const std::string name = module + ".weight";
  const Typed w = typed(name, {out, in});
  TypedLinear lin;
  lin.type = w.type;
  lin.weight = w.data;
  lin.in = in;
  lin.out = out;
  if (with_bias) lin.bias = f32(module + ".bias", {out});
  if (decoder_precision_ != Precision::int8 || in % static_cast<int>(kQ8Block) != 0) return lin;
  auto it = quantized_.find(name);
  if (it == quantized_.end()) {
    if (!arena_) arena_ = std::make_unique<HugePageArena>();
    const size_t rows = static_cast<size_t>(out), cols = static_cast<size_t>(in);
    // Tiles of 16 rows (core/q8_0.h), quantised in parallel tile by tile.
    uint8_t* q = arena_->allocate(q8_0_tiles_bytes(rows, cols));
    auto quantize = [&](size_t t0, size_t t1, int) {
      quantize_q8_0_tiles(w.type, w.data, rows, cols, t0, t1, q);
    };
    const size_t tiles = (rows + kQ8TileRows - 1) / kQ8TileRows;
    if (quantize_pool_)
      quantize_pool_->parallel_for(tiles, quantize);
    else
      quantize(0, tiles, 0);
    // The stored copy is not read again: its mapped pages can go.
    if (!converted_.count(name) && !files_[owner_.at(name)].private_copy()) {
      const TensorInfo& t = info(name);
      const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
      const uintptr_t begin = (reinterpret_cast<uintptr_t>(t.data) + page - 1) / page * page;
      const uintptr_t end = (reinterpret_cast<uintptr_t>(t.data) + t.nbytes) / page * page;
      if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
    }
    it = quantized_.emplace(name, q).first;
  }
  lin.type = WeightType::q8_0;
  lin.weight = it->second;
  return lin;
}

void WeightStore::enable_packed_cache() { enable_packed_cache(PackedCacheSettings::from_environment()); }

void WeightStore::enable_packed_cache(const PackedCacheSettings& settings) {
  if (!settings.enabled || replaced_ || total_bytes_ < settings.min_model_bytes) return;
  std::vector<fs::path> paths;
  for (const auto& f : files_) paths.emplace_back(f.name());
  packed_cache_ = std::make_shared<PackedWeightCache>(settings, paths, linear_precision_);
}

void WeightStore::save_packed_cache() {
  if (packed_cache_ != nullptr) packed_cache_->save();
}

void WeightStore::verify_packed_cache(ThreadPool& pool, const std::function<void()>& alongside) {
  if (packed_cache_ != nullptr)
    packed_cache_->verify_all(pool, alongside);
  else
    alongside();
}

void WeightStore::release(const std::string& name) const {
  const TensorInfo& t = info(name);
  if (t.dtype != DType::F32) return;  // converted copies are not in the map
  if (files_[owner_.at(name)].private_copy()) return;  // nothing to re-read it from
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(t.data) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(t.data) + t.nbytes) / page * page;
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

void WeightStore::check_shape(const TensorInfo& t, const std::string& name,
                              std::initializer_list<int64_t> shape) const {
  std::vector<int64_t> want(shape);
  if (t.shape == want) return;
  auto fmt = [](const std::vector<int64_t>& s) {
    std::string r = "[";
    for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
    return r + "]";
  };
  throw_error(ErrorKind::bad_input, describe_source(name) + ": tensor \"" + name + "\" has shape " +
                                        fmt(t.shape) + ", expected " + fmt(want) +
                                        " from config.json");
}

const float* WeightStore::f32(const std::string& name, std::initializer_list<int64_t> shape) {
  const TensorInfo& t = info(name);
  check_shape(t, name, shape);
  if (auto it = converted_.find(name); it != converted_.end()) return it->second.data();
  if (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::BF16 &&
      t.dtype != DType::F64) {
    throw_error(ErrorKind::unsupported, describe_source(name) + ": tensor \"" + name +
                                            "\" has dtype " + dtype_name(t.dtype) +
                                            "; weights must be F32, F16 or BF16");
  }
  if (t.dtype == DType::F32 && reinterpret_cast<uintptr_t>(t.data) % alignof(float) == 0)
    return reinterpret_cast<const float*>(t.data);
  std::vector<float>& copy = converted_[name];
  copy.resize(static_cast<size_t>(t.numel()));
  convert_to_f32(t.dtype, t.data, copy.size(), copy.data());
  return copy.data();
}

WeightStore::Typed WeightStore::typed(const std::string& name,
                                      std::initializer_list<int64_t> shape) {
  const TensorInfo& t = info(name);
  check_shape(t, name, shape);
  if (auto it = converted_.find(name); it != converted_.end())
    return {WeightType::f32, it->second.data()};
  if (t.dtype == DType::F16 && reinterpret_cast<uintptr_t>(t.data) % 2 == 0)
    return {WeightType::f16, t.data};
  if (t.dtype == DType::BF16 && reinterpret_cast<uintptr_t>(t.data) % 2 == 0)
    return {WeightType::bf16, t.data};
  return {WeightType::f32, f32(name, shape)};
}

void WeightStore::replace(const std::string& name, std::vector<float> values) {
  const TensorInfo& t = info(name);
  MMFUSE_CHECK(values.size() == static_cast<size_t>(t.numel()), internal,
               "replacement for tensor \"" + name + "\" has the wrong size");
  converted_[name] = std::move(values);
  replaced_ = true;
  packed_cache_.reset();  // cached layers would hold the weights from the files
}

}  // namespace mmfuse
