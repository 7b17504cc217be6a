#include "models/lora.h"

#include <cmath>
#include <regex>

#include "mmfuse/error.h"

namespace mmfuse {

namespace fs = std::filesystem;

namespace {

const std::string kPrefix = "base_model.model.";

// PEFT's rank_pattern / alpha_pattern: the first key whose regex
// ".*\.{key}$" matches the module name wins.
const nlohmann::json* pattern_value(const nlohmann::json& patterns, const std::string& module,
                                    const std::string& where) {
  if (patterns.is_null()) return nullptr;
  MMFUSE_CHECK(patterns.is_object(), bad_input, where + " must be an object");
  for (auto it = patterns.begin(); it != patterns.end(); ++it) {
    try {
      if (std::regex_match(module, std::regex(".*\\." + it.key() + "$"))) return &it.value();
    } catch (const std::regex_error&) {
      throw_error(ErrorKind::bad_input, where + ": key \"" + it.key() + "\" is not a valid regex");
    }
  }
  return nullptr;
}

}  // namespace

std::unique_ptr<LoraAdapter> read_lora_adapter(const fs::path& dir, WeightStore& base) {
  const fs::path config_path = dir / "adapter_config.json";
  MMFUSE_CHECK(fs::exists(config_path), not_found,
               config_path.string() + ": missing (a PEFT adapter folder has adapter_config.json)");
  const nlohmann::json config = read_json_file(config_path);
  MMFUSE_CHECK(config.is_object(), bad_input, config_path.string() + ": must be a JSON object");
  const JsonFields f(config, config_path.string());
  const std::string where = config_path.string();

  const std::string peft_type = f.string("peft_type", "LORA");
  MMFUSE_CHECK(peft_type == "LORA", unsupported,
               where + ": peft_type \"" + peft_type + "\" is not supported (only LORA)");
  MMFUSE_CHECK(!f.boolean("use_dora", false), unsupported,
               where + ": use_dora is not supported (DoRA adapters rescale the merged weight)");
  MMFUSE_CHECK(!f.boolean("fan_in_fan_out", false), unsupported,
               where + ": fan_in_fan_out (GPT-2 Conv1D weights) is not supported");
  const std::string bias = f.string("bias", "none");
  MMFUSE_CHECK(bias == "none", unsupported,
               where + ": bias \"" + bias + "\" is not supported (only \"none\")");
  MMFUSE_CHECK(!config.contains("layer_replication") || config["layer_replication"].is_null(),
               unsupported, where + ": layer_replication is not supported");
  const bool rslora = f.boolean("use_rslora", false);
  const int64_t default_r = f.integer("r", 8);
  const double default_alpha = f.number("lora_alpha", 8);
  MMFUSE_CHECK(default_r > 0, bad_input, where + ": r must be positive");
  static const nlohmann::json none;
  const nlohmann::json& rank_pattern = config.contains("rank_pattern") ? config["rank_pattern"] : none;
  const nlohmann::json& alpha_pattern =
      config.contains("alpha_pattern") ? config["alpha_pattern"] : none;

  const fs::path weights_path = dir / "adapter_model.safetensors";
  MMFUSE_CHECK(fs::exists(weights_path), not_found,
               weights_path.string() +
                   ": missing (only safetensors adapters are read; convert adapter_model.bin)");
  const SafetensorsFile file = SafetensorsFile::open(weights_path);

  auto adapter = std::make_unique<LoraAdapter>();
  adapter->dir = dir;
  adapter->name = fs::absolute(dir).lexically_normal().filename().string();
  if (adapter->name.empty())
    adapter->name = fs::absolute(dir).lexically_normal().parent_path().filename().string();

  auto read_f32 = [&](const TensorInfo& t) {
    std::vector<float> values(static_cast<size_t>(t.numel()));
    MMFUSE_CHECK(t.dtype == DType::F32 || t.dtype == DType::F16 || t.dtype == DType::BF16,
                 unsupported,
                 weights_path.string() + ": tensor \"" + t.name + "\" has dtype " +
                     dtype_name(t.dtype));
    convert_to_f32(t.dtype, t.data, values.size(), values.data());
    return values;
  };

  for (const auto& [key, tensor] : file.tensors()) {
    MMFUSE_CHECK(key.rfind(kPrefix, 0) == 0, bad_input,
                 weights_path.string() + ": tensor \"" + key + "\" does not start with \"" +
                     kPrefix + "\" (not a PEFT adapter file)");
    const std::string rest = key.substr(kPrefix.size());
    const auto a_pos = rest.find(".lora_A.");
    const auto b_pos = rest.find(".lora_B.");
    const auto save_pos = rest.find(".modules_to_save.");
    if (save_pos != std::string::npos) {
      // modules_to_save: "<module>.modules_to_save.<param>" replaces "<module>.<param>".
      const std::string base_name =
          rest.substr(0, save_pos) + "." + rest.substr(save_pos + std::string(".modules_to_save.").size());
      MMFUSE_CHECK(base.has(base_name), bad_input,
                   weights_path.string() + ": \"" + key + "\" replaces \"" + base_name +
                       "\", which the base model does not have (an adapter for another base?)");
      const TensorInfo& b = base.info(base_name);
      MMFUSE_CHECK(b.shape == tensor.shape, bad_input,
                   weights_path.string() + ": tensor \"" + key +
                       "\" does not have the shape of the base tensor \"" + base_name + "\"");
      adapter->replaced_tensors[base_name] = read_f32(tensor);
      continue;
    }
    MMFUSE_CHECK(a_pos != std::string::npos || b_pos != std::string::npos, unsupported,
                 weights_path.string() + ": tensor \"" + key +
                     "\" is neither lora_A, lora_B nor modules_to_save (embedding LoRA, "
                     "DoRA magnitudes and biases are not supported)");
    const bool is_a = a_pos != std::string::npos;
    const std::string module = rest.substr(0, is_a ? a_pos : b_pos);
    const std::string param = rest.substr((is_a ? a_pos : b_pos) + 8);
    MMFUSE_CHECK(param == "weight", unsupported,
                 weights_path.string() + ": tensor \"" + key + "\" is not supported");
    MMFUSE_CHECK(tensor.shape.size() == 2, bad_input,
                 weights_path.string() + ": tensor \"" + key + "\" must be 2-D");
    LoraWeights& lora = adapter->modules[module];
    (is_a ? lora.a : lora.b) = read_f32(tensor);
    if (is_a) {
      lora.r = static_cast<int>(tensor.shape[0]);
      lora.in = static_cast<int>(tensor.shape[1]);
    } else {
      lora.out = static_cast<int>(tensor.shape[0]);
      MMFUSE_CHECK(lora.r == 0 || lora.r == tensor.shape[1], bad_input,
                   weights_path.string() + ": \"" + key + "\" has rank " +
                       std::to_string(tensor.shape[1]) + " but lora_A has " + std::to_string(lora.r));
    }
  }
  MMFUSE_CHECK(!adapter->modules.empty() || !adapter->replaced_tensors.empty(), bad_input,
               weights_path.string() + ": holds no LoRA weights");

  for (auto& [module, lora] : adapter->modules) {
    MMFUSE_CHECK(!lora.a.empty() && !lora.b.empty(), bad_input,
                 weights_path.string() + ": module \"" + module + "\" has only one of lora_A/lora_B");
    MMFUSE_CHECK(static_cast<int64_t>(lora.b.size()) == int64_t{lora.out} * lora.r, bad_input,
                 weights_path.string() + ": lora_B of \"" + module + "\" does not match lora_A's rank");
    const std::string base_name = module + ".weight";
    MMFUSE_CHECK(base.has(base_name), bad_input,
                 weights_path.string() + ": module \"" + module +
                     "\" is not in the base model (an adapter for another base?)");
    const TensorInfo& w = base.info(base_name);
    MMFUSE_CHECK(w.shape.size() == 2 && w.shape[0] == lora.out && w.shape[1] == lora.in, bad_input,
                 weights_path.string() + ": tensor \"" + base_name + "\" of the base has shape [" +
                     (w.shape.size() == 2 ? std::to_string(w.shape[0]) + ", " + std::to_string(w.shape[1])
                                          : std::string("?")) +
                     "] but the adapter's update is [" + std::to_string(lora.out) + ", " +
                     std::to_string(lora.in) + "] (an adapter for another base?)");
    const nlohmann::json* r_override = pattern_value(rank_pattern, module, where + " rank_pattern");
    const nlohmann::json* alpha_override =
        pattern_value(alpha_pattern, module, where + " alpha_pattern");
    const int64_t r = r_override != nullptr && r_override->is_number_integer()
                          ? r_override->get<int64_t>()
                          : default_r;
    const double alpha = alpha_override != nullptr && alpha_override->is_number()
                             ? alpha_override->get<double>()
                             : default_alpha;
    MMFUSE_CHECK(r == lora.r, bad_input,
                 where + ": r is " + std::to_string(r) + " for \"" + module +
                     "\" but its lora_A has " + std::to_string(lora.r) + " rows");
    // PEFT computes the scale in Python floats, then multiplies float32 tensors by it.
    lora.scale = static_cast<float>(rslora ? alpha / std::sqrt(static_cast<double>(r))
                                           : alpha / static_cast<double>(r));
  }
  return adapter;
}

std::vector<float> merged_lora_weight(const LoraWeights& lora, const float* base_weight) {
  const size_t out = static_cast<size_t>(lora.out), in = static_cast<size_t>(lora.in),
               r = static_cast<size_t>(lora.r);
  std::vector<float> w(base_weight, base_weight + out * in);
  for (size_t o = 0; o < out; ++o)
    for (size_t i = 0; i < in; ++i) {
      float delta = 0.0f;
      for (size_t k = 0; k < r; ++k) delta += lora.b[o * r + k] * lora.a[k * in + i];
      w[o * in + i] += delta * lora.scale;
    }
  return w;
}

void merge_lora_into(const LoraAdapter& adapter, WeightStore& store) {
  for (const auto& [name, values] : adapter.replaced_tensors) store.replace(name, values);
  for (const auto& [module, lora] : adapter.modules) {
    const std::string name = module + ".weight";
    const float* w = store.f32(name, {lora.out, lora.in});
    store.replace(name, merged_lora_weight(lora, w));
  }
}

void add_lora_update(const LoraWeights& lora, const float* x, size_t rows, size_t ldx, float* y,
                     size_t ldy) {
  const size_t in = static_cast<size_t>(lora.in), out = static_cast<size_t>(lora.out),
               r = static_cast<size_t>(lora.r);
  std::vector<float> t(r);
  for (size_t row = 0; row < rows; ++row) {
    const float* xr = x + row * ldx;
    for (size_t k = 0; k < r; ++k) {
      float sum = 0.0f;
      for (size_t i = 0; i < in; ++i) sum += lora.a[k * in + i] * xr[i];
      t[k] = sum;
    }
    float* yr = y + row * ldy;
    for (size_t o = 0; o < out; ++o) {
      float sum = 0.0f;
      for (size_t k = 0; k < r; ++k) sum += lora.b[o * r + k] * t[k];
      yr[o] += sum * lora.scale;
    }
  }
}

}  // namespace mmfuse
