#include "models/blip2_config.h"

#include "io/model_folder.h"
#include "mmfuse/error.h"

namespace mmfuse {

namespace {

int positive(const JsonFields& f, const std::string& key, int fallback) {
  const int64_t v = f.integer(key, fallback);
  MMFUSE_CHECK(
      v > 0 && v < (1 << 24), bad_input,
      f.where() + ": field \"" + key + "\" must be a positive integer, got " + std::to_string(v));
  return static_cast<int>(v);
}

float epsilon(const JsonFields& f, const std::string& key, float fallback) {
  const double v = f.number(key, fallback);
  MMFUSE_CHECK(v > 0 && v < 1, bad_input,
               f.where() + ": field \"" + key + "\" must be a small positive number");
  return static_cast<float>(v);
}

void check_heads(int hidden, int heads, const std::string& where) {
  MMFUSE_CHECK(hidden % heads == 0, bad_input,
               where + ": hidden_size " + std::to_string(hidden) +
                   " is not divisible by num_attention_heads " + std::to_string(heads));
}

const nlohmann::json& sub_object(const nlohmann::json& config, const char* key,
                                 const std::string& where) {
  static const nlohmann::json empty = nlohmann::json::object();
  if (!config.contains(key) || config[key].is_null()) return empty;
  MMFUSE_CHECK(config[key].is_object(), bad_input,
               where + ": field \"" + key + "\" must be an object");
  return config[key];
}

Blip2VisionConfig parse_vision(const nlohmann::json& json, const std::string& where) {
  const JsonFields f(json, where);
  Blip2VisionConfig c;
  c.hidden_size = positive(f, "hidden_size", c.hidden_size);
  c.intermediate_size = positive(f, "intermediate_size", c.intermediate_size);
  c.num_hidden_layers = positive(f, "num_hidden_layers", c.num_hidden_layers);
  c.num_attention_heads = positive(f, "num_attention_heads", c.num_attention_heads);
  c.image_size = positive(f, "image_size", c.image_size);
  c.patch_size = positive(f, "patch_size", c.patch_size);
  c.layer_norm_eps = epsilon(f, "layer_norm_eps", c.layer_norm_eps);
  c.hidden_act = parse_activation(f.string("hidden_act", "gelu"), where + " hidden_act");
  c.qkv_bias = f.boolean("qkv_bias", c.qkv_bias);
  check_heads(c.hidden_size, c.num_attention_heads, where);
  MMFUSE_CHECK(c.image_size % c.patch_size == 0, bad_input,
               where + ": image_size must be a multiple of patch_size");
  return c;
}

Blip2QFormerConfig parse_qformer(const nlohmann::json& json, const std::string& where) {
  const JsonFields f(json, where);
  Blip2QFormerConfig c;
  c.hidden_size = positive(f, "hidden_size", c.hidden_size);
  c.num_hidden_layers = positive(f, "num_hidden_layers", c.num_hidden_layers);
  c.num_attention_heads = positive(f, "num_attention_heads", c.num_attention_heads);
  c.intermediate_size = positive(f, "intermediate_size", c.intermediate_size);
  c.hidden_act = parse_activation(f.string("hidden_act", "gelu"), where + " hidden_act");
  c.layer_norm_eps = epsilon(f, "layer_norm_eps", c.layer_norm_eps);
  c.cross_attention_frequency =
      positive(f, "cross_attention_frequency", c.cross_attention_frequency);
  c.encoder_hidden_size = positive(f, "encoder_hidden_size", c.encoder_hidden_size);
  // Relative positions would add a distance embedding to every attention.
  const std::string positions = f.string("position_embedding_type", "absolute");
  MMFUSE_CHECK(
      positions == "absolute", unsupported,
      where + ": position_embedding_type \"" + positions + "\" is not supported (\"absolute\" is)");
  check_heads(c.hidden_size, c.num_attention_heads, where);
  return c;
}

}  // namespace

Blip2Config Blip2Config::from_json(const nlohmann::json& config, const std::string& where) {
  MMFUSE_CHECK(config.is_object(), bad_input, where + ": config must be a JSON object");
  const JsonFields f(config, where);
  Blip2Config c;
  c.vision = parse_vision(sub_object(config, "vision_config", where), where + " vision_config");
  c.qformer = parse_qformer(sub_object(config, "qformer_config", where), where + " qformer_config");
  // Blip2Config overrides whatever the file says: the Q-Former reads the vision tower's output.
  c.qformer.encoder_hidden_size = c.vision.hidden_size;
  c.num_query_tokens = positive(f, "num_query_tokens", c.num_query_tokens);
  if (f.has("image_token_index")) c.image_token_index = f.integer("image_token_index", 0);

  c.text_config = sub_object(config, "text_config", where);
  const JsonFields text(c.text_config, where + " text_config");
  c.text_model_type = text.string("model_type", "opt");
  if (c.text_model_type == "opt") {
    c.text_hidden_size = positive(text, "hidden_size", 768);  // OPTConfig default
  } else if (c.text_model_type == "t5") {
    c.text_hidden_size =
        positive(text, "d_model", 512);  // T5Config default (hidden_size maps to it)
  } else {
    throw_error(ErrorKind::unsupported, where + ": text_config.model_type \"" + c.text_model_type +
                                            "\" is not supported (BLIP-2 with OPT or T5 is)");
  }
  return c;
}

}  // namespace mmfuse
