// PEFT LoRA adapters (adapter_config.json + adapter_model.safetensors, as
// peft's save_pretrained writes them): low-rank updates W' = W + s * B A of a
// base model's linear layers, s = lora_alpha / r (or / sqrt(r) with rslora).
// Used merged (the base weights replaced once at load, as merge_and_unload)
// or unmerged (y += s * B(A x) per sequence, so one base serves many adapters).
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/model_folder.h"

namespace mmfuse {

struct LoraWeights {
  int r = 0, in = 0, out = 0;
  float scale = 1.0f;
  std::vector<float> a;  // lora_A [r, in]
  std::vector<float> b;  // lora_B [out, r]
};

struct LoraAdapter {
  virtual ~LoraAdapter() = default;
  std::string name;  // the folder's name unless the caller renames it
  std::filesystem::path dir;
  // Base module path (the state_dict name without ".weight", e.g.
  // "language_model.model.layers.0.self_attn.q_proj") -> its update.
  std::map<std::string, LoraWeights> modules;
  // modules_to_save: base tensor name -> the adapter's full replacement.
  std::map<std::string, std::vector<float>> replaced_tensors;

  const LoraWeights* find(const std::string& module) const {
    auto it = modules.find(module);
    return it == modules.end() ? nullptr : &it->second;
  }
};

// Reads and checks an adapter against the base model's weights: every
// updated module must exist with matching shapes (a mismatch names the
// tensor), and settings this engine does not implement (DoRA, biases,
// fan_in_fan_out, other peft types) are unsupported errors naming the field.
std::unique_ptr<LoraAdapter> read_lora_adapter(const std::filesystem::path& dir, WeightStore& base);

// W + s * (B @ A) for one module, float32, [out, in].
std::vector<float> merged_lora_weight(const LoraWeights& lora, const float* base_weight);

// Replaces every updated module's weight (and modules_to_save tensors) in the
// store, so a model built from it afterwards is the merged model.
void merge_lora_into(const LoraAdapter& adapter, WeightStore& store);

// y[r, :] += s * B (A x[r, :]) for rows of x (stride ldx) and y (stride ldy).
void add_lora_update(const LoraWeights& lora, const float* x, size_t rows, size_t ldx, float* y,
                     size_t ldy);

}  // namespace mmfuse
