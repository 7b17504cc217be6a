#include "models/clip_config.h"

#include "io/model_folder.h"
#include "mmfuse/error.h"

namespace mmfuse {

namespace {

int positive(const JsonFields& f, const std::string& key, int fallback) {
  int64_t v = f.integer(key, fallback);
  MMFUSE_CHECK(v > 0 && v < (1 << 24), bad_input,
               f.where() + ": field \"" + key + "\" must be a positive integer, got " + std::to_string(v));
  return static_cast<int>(v);
}

void check_heads(int hidden, int heads, const std::string& where) {
  MMFUSE_CHECK(hidden % heads == 0, bad_input,
               where + ": hidden_size " + std::to_string(hidden) +
                   " is not divisible by num_attention_heads " + std::to_string(heads));
}

}  // namespace

ClipVisionConfig ClipVisionConfig::from_json(const nlohmann::json& vj, const std::string& where) {
  MMFUSE_CHECK(vj.is_object(), bad_input, where + ": must be a JSON object");
  ClipVisionConfig c;
  JsonFields v(vj, where);
  c.hidden_size = positive(v, "hidden_size", c.hidden_size);
  c.intermediate_size = positive(v, "intermediate_size", c.intermediate_size);
  c.num_hidden_layers = positive(v, "num_hidden_layers", c.num_hidden_layers);
  c.num_attention_heads = positive(v, "num_attention_heads", c.num_attention_heads);
  c.num_channels = positive(v, "num_channels", c.num_channels);
  c.image_size = positive(v, "image_size", c.image_size);
  c.patch_size = positive(v, "patch_size", c.patch_size);
  c.layer_norm_eps = static_cast<float>(v.number("layer_norm_eps", c.layer_norm_eps));
  c.hidden_act = parse_activation(v.string("hidden_act", "quick_gelu"), v.where() + " hidden_act");
  check_heads(c.hidden_size, c.num_attention_heads, v.where());
  MMFUSE_CHECK(c.num_channels == 3, unsupported,
               v.where() + ": only num_channels 3 (RGB) is supported");
  MMFUSE_CHECK(c.image_size % c.patch_size == 0, bad_input,
               v.where() + ": image_size must be a multiple of patch_size");
  return c;
}

ClipConfig ClipConfig::from_json(const nlohmann::json& config, const std::string& where) {
  MMFUSE_CHECK(config.is_object(), bad_input, where + ": config must be a JSON object");
  JsonFields top(config, where);
  ClipConfig c;
  c.model_type = top.string("model_type", "");
  MMFUSE_CHECK(c.model_type == "clip", unsupported,
               where + ": unsupported model_type \"" + c.model_type +
                   "\" (this command needs a CLIP model, model_type \"clip\")");
  c.projection_dim = positive(top, "projection_dim", 512);

  static const nlohmann::json empty = nlohmann::json::object();
  const nlohmann::json& tj = config.contains("text_config") && config["text_config"].is_object()
                                 ? config["text_config"]
                                 : empty;
  JsonFields t(tj, where + " text_config");
  c.text.vocab_size = positive(t, "vocab_size", c.text.vocab_size);
  c.text.hidden_size = positive(t, "hidden_size", c.text.hidden_size);
  c.text.intermediate_size = positive(t, "intermediate_size", c.text.intermediate_size);
  c.text.num_hidden_layers = positive(t, "num_hidden_layers", c.text.num_hidden_layers);
  c.text.num_attention_heads = positive(t, "num_attention_heads", c.text.num_attention_heads);
  c.text.max_position_embeddings = positive(t, "max_position_embeddings", c.text.max_position_embeddings);
  c.text.layer_norm_eps = static_cast<float>(t.number("layer_norm_eps", c.text.layer_norm_eps));
  c.text.hidden_act = parse_activation(t.string("hidden_act", "quick_gelu"), t.where() + " hidden_act");
  c.text.eos_token_id = t.integer("eos_token_id", c.text.eos_token_id);
  check_heads(c.text.hidden_size, c.text.num_attention_heads, t.where());

  const nlohmann::json& vj = config.contains("vision_config") && config["vision_config"].is_object()
                                 ? config["vision_config"]
                                 : empty;
  c.vision = ClipVisionConfig::from_json(vj, where + " vision_config");
  return c;
}

}  // namespace mmfuse
