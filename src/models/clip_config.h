// CLIP hyper-parameters from config.json, with the Hugging Face class defaults
// (CLIPTextConfig / CLIPVisionConfig / CLIPConfig, transformers 4.44) for absent keys.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "core/ops.h"

namespace mmfuse {

struct ClipTextConfig {
  int vocab_size = 49408;
  int hidden_size = 512;
  int intermediate_size = 2048;
  int num_hidden_layers = 12;
  int num_attention_heads = 8;
  int max_position_embeddings = 77;
  float layer_norm_eps = 1e-5f;
  Activation hidden_act = Activation::quick_gelu;
  // 2 is the legacy value of old configs: pool at argmax(input_ids) then.
  int64_t eos_token_id = 49407;
};

struct ClipVisionConfig {
  int hidden_size = 768;
  int intermediate_size = 3072;
  int num_hidden_layers = 12;
  int num_attention_heads = 12;
  int num_channels = 3;
  int image_size = 224;
  int patch_size = 32;
  float layer_norm_eps = 1e-5f;
  Activation hidden_act = Activation::quick_gelu;

  // Parses a vision_config object (CLIPVisionConfig / ChineseCLIPVisionConfig,
  // whose defaults are the same); `where` names it in errors.
  static ClipVisionConfig from_json(const nlohmann::json& vision_config, const std::string& where);

  int patches_per_side() const { return image_size / patch_size; }
  int num_positions() const { return patches_per_side() * patches_per_side() + 1; }
};

struct ClipConfig {
  std::string model_type = "clip";
  ClipTextConfig text;
  ClipVisionConfig vision;
  int projection_dim = 512;

  // Parses a CLIPModel config.json; `where` (the file) is named in errors.
  // Throws ErrorKind::unsupported for other model types.
  static ClipConfig from_json(const nlohmann::json& config, const std::string& where);
};

}  // namespace mmfuse
