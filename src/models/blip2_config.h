// config.json of a BLIP-2 folder (transformers 4.44 Blip2Config): the vision
// tower, the Q-Former and the number of query tokens, with the HF class
// defaults for absent keys. The language model's text_config is kept as the
// raw JSON object for the OPT / T5 config parsers.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/ops.h"

namespace mmfuse {

struct Blip2VisionConfig {  // Blip2VisionConfig (defaults: EVA ViT-g/14)
  int hidden_size = 1408;
  int intermediate_size = 6144;
  int num_hidden_layers = 39;
  int num_attention_heads = 16;
  int image_size = 224;
  int patch_size = 14;
  float layer_norm_eps = 1e-6f;
  Activation hidden_act = Activation::gelu;
  bool qkv_bias = true;

  int patches_per_side() const { return image_size / patch_size; }
  int num_positions() const { return patches_per_side() * patches_per_side() + 1; }
};

struct Blip2QFormerConfig {  // Blip2QFormerConfig (defaults: BERT-base size)
  int hidden_size = 768;
  int num_hidden_layers = 12;
  int num_attention_heads = 12;
  int intermediate_size = 3072;
  Activation hidden_act = Activation::gelu;
  float layer_norm_eps = 1e-12f;
  int cross_attention_frequency = 2;  // layer i cross-attends when i % frequency == 0
  int encoder_hidden_size = 1408;     // always the vision hidden size (Blip2Config sets it)

  bool has_cross_attention(int layer) const { return layer % cross_attention_frequency == 0; }
};

struct Blip2Config {
  Blip2VisionConfig vision;
  Blip2QFormerConfig qformer;
  int num_query_tokens = 32;
  // text_config as written (an empty object when absent) and its model_type
  // ("opt" when absent, as Blip2Config defaults; "opt" or "t5" are supported).
  nlohmann::json text_config = nlohmann::json::object();
  std::string text_model_type = "opt";
  // The language model's hidden size (OPT hidden_size, T5 d_model): the width
  // of language_projection's output rows.
  int text_hidden_size = 768;
  // Set in folders for transformers >= 4.46, whose processor puts
  // num_query_tokens image tokens in input_ids; absent in 4.44-era folders.
  std::optional<int64_t> image_token_index;

  // Parses a Blip2ForConditionalGeneration config.json; `where` (the file) is
  // named in errors: bad_input for malformed fields, unsupported for valid
  // settings not handled (another language model, an unknown hidden_act, a
  // relative position_embedding_type).
  static Blip2Config from_json(const nlohmann::json& config, const std::string& where);
};

}  // namespace mmfuse
