// A Hugging Face model folder: config.json plus weights in model.safetensors or
// in shards listed by model.safetensors.index.json. Tensors are looked up by
// their state_dict names and handed out as float32, shape-checked.
#pragma once

#include <deque>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/huge_page_arena.h"
#include "core/precision.h"
#include "core/typed_linear.h"
#include "io/safetensors.h"

namespace mmfuse {

class PackedWeightCache;
struct PackedCacheSettings;

// Reads a JSON file; errors name the file.
nlohmann::json read_json_file(const std::filesystem::path& path);

// Typed access to a JSON object with defaults; errors name file and field.
class JsonFields {
 public:
  JsonFields(const nlohmann::json& object, std::string where)
      : object_(object), where_(std::move(where)) {}
  int64_t integer(const std::string& key, int64_t fallback) const;
  double number(const std::string& key, double fallback) const;
  bool boolean(const std::string& key, bool fallback) const;
  std::string string(const std::string& key, const std::string& fallback) const;
  bool has(const std::string& key) const;
  // A size or count: a positive integer below 2^30 (bad_input naming the key otherwise).
  int positive(const std::string& key, int fallback) const;
  // A token id below `vocab_size`, or -1 for null / absent when fallback is -1.
  int32_t token_id(const std::string& key, int32_t fallback, int64_t vocab_size) const;
  // eos_token_id as configs write it: one id, a list of ids, or null (none).
  std::vector<int32_t> token_ids(const std::string& key, std::vector<int32_t> fallback,
                                 int64_t vocab_size) const;
  const std::string& where() const { return where_; }

 private:
  const nlohmann::json& object_;
  std::string where_;
};

// How a decoder folder's weight files are opened: int8 weights are quantised
// into memory of their own, so the file is only mapped (its pages dropped once
// read); stored weights are streamed from it (streamed_weight_residency).
FileResidency decoder_weight_residency(Precision precision);

class WeightStore {
 public:
  // Opens model.safetensors, or the shards named by model.safetensors.index.json.
  static std::shared_ptr<WeightStore> open_folder(
      const std::filesystem::path& dir, FileResidency residency = FileResidency::mapped);

  bool has(const std::string& name) const;
  const TensorInfo& info(const std::string& name) const;
  // The tensor as float32 with exactly `shape` (an empty list is a scalar).
  // Aligned F32 data is returned in place (zero copy, from the memory map);
  // other dtypes are converted once and kept for the life of the store.
  const float* f32(const std::string& name, std::initializer_list<int64_t> shape);
  // The tensor in its stored type (F32, F16 or BF16, zero copy from the map),
  // with exactly `shape`; other dtypes are unsupported. Decoders use this.
  struct Typed {
    WeightType type = WeightType::f32;
    const void* data = nullptr;
  };
  Typed typed(const std::string& name, std::initializer_list<int64_t> shape);
  // `module`.weight [out, in] in its stored type (or q8_0, see
  // set_decoder_precision), and `module`.bias [out] (float32) when
  // `with_bias`: a linear layer as the decoders read it.
  TypedLinear typed_linear(const std::string& module, int in, int out, bool with_bias);
  // The weights typed_linear hands out: Precision::f32 (the default) keeps the
  // stored type; int8 quantises each weight whose input width is a multiple
  // of 32 to q8_0 once, at its first lookup (core/q8_0.h; others stay as
  // stored), the rows shared out over `pool` (null: this thread). bf16 is not
  // a decoder format (unsupported).
  void set_decoder_precision(Precision precision, std::shared_ptr<ThreadPool> pool = nullptr);
  Precision decoder_precision() const { return decoder_precision_; }
  // Replaces a tensor's values (float32, same element count) for every later
  // f32() / typed() lookup: how merged LoRA weights enter a model at load.
  void replace(const std::string& name, std::vector<float> values);
  // Drops the named tensor's pages from memory when it is read in place from
  // the map (its data stays readable: the kernel re-reads the file on access).
  // Used once a tensor has been copied into another layout.
  void release(const std::string& name) const;
  size_t total_bytes() const { return total_bytes_; }
  std::string describe_source(const std::string& name) const;
  // The precision the model's linear layers are packed in (load_linear reads
  // it; heads that must stay exact use load_linear_exact). f32 by default;
  // the model's opener sets the `--dtype` the user asked for.
  void set_linear_precision(Precision precision) { linear_precision_ = precision; }
  Precision linear_precision() const { return linear_precision_; }
  // The packed-weight cache (io/packed_weight_cache.h) for this store's
  // linear layers, in linear_precision(): openers that want it call
  // enable_packed_cache() after set_linear_precision() and
  // save_packed_cache() once every layer is loaded. Settings default to the
  // environment's. Not after replace() (merged weights are not in the files).
  void enable_packed_cache();
  void enable_packed_cache(const PackedCacheSettings& settings);
  PackedWeightCache* packed_cache() { return packed_cache_.get(); }
  void save_packed_cache();
  // Runs `alongside` (say, reading the tokenizer) while the cache file's
  // checksums, if there is one, are verified over `pool`'s threads
  // (PackedWeightCache::verify_all); without a cache file just runs it.
  void verify_packed_cache(ThreadPool& pool, const std::function<void()>& alongside);

 private:
  std::vector<SafetensorsFile> files_;
  std::map<std::string, size_t> owner_;  // tensor name -> index into files_
  void check_shape(const TensorInfo& t, const std::string& name,
                   std::initializer_list<int64_t> shape) const;
  std::map<std::string, std::vector<float>> converted_;  // name -> float32 copy or replacement
  size_t total_bytes_ = 0;
  Precision linear_precision_ = Precision::f32;
  std::shared_ptr<PackedWeightCache> packed_cache_;
  bool replaced_ = false;
  Precision decoder_precision_ = Precision::f32;
  std::map<std::string, const uint8_t*> quantized_;  // weight name -> q8_0 rows in arena_
  std::unique_ptr<HugePageArena> arena_;
  std::shared_ptr<ThreadPool> quantize_pool_;
};

}  // namespace mmfuse
