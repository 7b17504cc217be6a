// Wav2Vec2Config / Wav2Vec2FeatureConfig parsing and the feature extractor's
// per-utterance normalisation.
#include "models/wav2vec2_config.h"

#include <cmath>

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

std::vector<int> int_list(const nlohmann::json& config, const std::string& key,
                          std::vector<int> fallback, const std::string& where) {
  if (!config.contains(key)) return fallback;
  const nlohmann::json& j = config[key];
  MMFUSE_CHECK(j.is_array() && !j.empty() && j.size() <= 64, bad_input,
               where + ": field \"" + key + "\" must be a non-empty list of integers");
  std::vector<int> out;
  for (const auto& v : j) {
    MMFUSE_CHECK(v.is_number_integer() && v.get<int64_t>() > 0 && v.get<int64_t>() < (1 << 20),
                 bad_input, where + ": field \"" + key + "\" must hold positive integers");
    out.push_back(static_cast<int>(v.get<int64_t>()));
  }
  return out;
}

}  // namespace

int Wav2Vec2Config::inputs_to_logits_ratio() const {
  int r = 1;
  for (int s : conv_stride) r *= s;
  return r;
}

size_t Wav2Vec2Config::frames_for(size_t samples) const {
  size_t len = samples;
  for (size_t i = 0; i < conv_kernel.size(); ++i) {
    const size_t k = static_cast<size_t>(conv_kernel[i]), s = static_cast<size_t>(conv_stride[i]);
    if (len < k) return 0;
    len = (len - k) / s + 1;
  }
  return len;
}

size_t Wav2Vec2Config::receptive_field() const {
  size_t field = 1;
  for (size_t i = conv_kernel.size(); i-- > 0;)
    field = (field - 1) * static_cast<size_t>(conv_stride[i]) + static_cast<size_t>(conv_kernel[i]);
  return field;
}

Wav2Vec2Config Wav2Vec2Config::from_json(const nlohmann::json& config, const std::string& where) {
  MMFUSE_CHECK(config.is_object(), bad_input, where + ": config must be a JSON object");
  JsonFields f(config, where);
  const std::string type = f.string("model_type", "");
  MMFUSE_CHECK(type == "wav2vec2", unsupported,
               where + ": unsupported model_type \"" + type +
                   "\" (this command needs a wav2vec2 CTC model, model_type \"wav2vec2\")");
  if (config.contains("architectures") && config["architectures"].is_array()) {
    bool ctc = false;
    for (const auto& a : config["architectures"])
      ctc = ctc || (a.is_string() && a.get<std::string>() == "Wav2Vec2ForCTC");
    MMFUSE_CHECK(ctc, unsupported,
                 where + ": architectures does not list Wav2Vec2ForCTC (a CTC head is needed)");
  }
  Wav2Vec2Config c;
  c.conv_dim = int_list(config, "conv_dim", c.conv_dim, where);
  c.conv_kernel = int_list(config, "conv_kernel", c.conv_kernel, where);
  c.conv_stride = int_list(config, "conv_stride", c.conv_stride, where);
  MMFUSE_CHECK(
      c.conv_dim.size() == c.conv_kernel.size() && c.conv_dim.size() == c.conv_stride.size(),
      bad_input, where + ": conv_dim, conv_kernel and conv_stride must have the same length");
  const int layers = static_cast<int>(
      f.integer("num_feat_extract_layers", static_cast<int64_t>(c.conv_dim.size())));
  MMFUSE_CHECK(layers == static_cast<int>(c.conv_dim.size()), bad_input,
               where + ": num_feat_extract_layers does not match the length of conv_dim");
  c.conv_bias = f.boolean("conv_bias", false);
  const std::string norm = f.string("feat_extract_norm", "group");
  MMFUSE_CHECK(norm == "group" || norm == "layer", unsupported,
               where + ": feat_extract_norm must be \"group\" or \"layer\", got \"" + norm + "\"");
  c.feat_extract_norm_layer = norm == "layer";
  c.feat_extract_activation = parse_activation(f.string("feat_extract_activation", "gelu"),
                                               where + " feat_extract_activation");
  c.hidden_size = positive(f, "hidden_size", c.hidden_size);
  c.num_hidden_layers = positive(f, "num_hidden_layers", c.num_hidden_layers);
  c.num_attention_heads = positive(f, "num_attention_heads", c.num_attention_heads);
  c.intermediate_size = positive(f, "intermediate_size", c.intermediate_size);
  c.hidden_act = parse_activation(f.string("hidden_act", "gelu"), where + " hidden_act");
  c.layer_norm_eps = static_cast<float>(f.number("layer_norm_eps", c.layer_norm_eps));
  MMFUSE_CHECK(c.layer_norm_eps > 0 && std::isfinite(c.layer_norm_eps), bad_input,
               where + ": layer_norm_eps must be positive");
  c.do_stable_layer_norm = f.boolean("do_stable_layer_norm", false);
  c.num_conv_pos_embeddings = positive(f, "num_conv_pos_embeddings", c.num_conv_pos_embeddings);
  c.num_conv_pos_embedding_groups =
      positive(f, "num_conv_pos_embedding_groups", c.num_conv_pos_embedding_groups);
  c.vocab_size = positive(f, "vocab_size", c.vocab_size);
  c.pad_token_id = static_cast<int>(f.integer("pad_token_id", 0));
  MMFUSE_CHECK(c.pad_token_id >= 0 && c.pad_token_id < c.vocab_size, bad_input,
               where + ": pad_token_id (the CTC blank) must be a vocabulary id");
  MMFUSE_CHECK(c.hidden_size % c.num_attention_heads == 0, bad_input,
               where + ": hidden_size " + std::to_string(c.hidden_size) +
                   " is not divisible by num_attention_heads " +
                   std::to_string(c.num_attention_heads));
  MMFUSE_CHECK(c.hidden_size % c.num_conv_pos_embedding_groups == 0, bad_input,
               where + ": hidden_size is not divisible by num_conv_pos_embedding_groups");
  MMFUSE_CHECK(!f.boolean("add_adapter", false), unsupported,
               where + ": add_adapter models are not supported");
  MMFUSE_CHECK(!config.contains("adapter_attn_dim") || config["adapter_attn_dim"].is_null(),
               unsupported, where + ": adapter_attn_dim (MMS adapters) is not supported");
  return c;
}

Wav2Vec2FeatureConfig Wav2Vec2FeatureConfig::from_json(const nlohmann::json& config,
                                                       const std::string& where) {
  MMFUSE_CHECK(config.is_object(), bad_input, where + ": must be a JSON object");
  JsonFields f(config, where);
  Wav2Vec2FeatureConfig c;
  c.sampling_rate = positive(f, "sampling_rate", c.sampling_rate);
  c.do_normalize = f.boolean("do_normalize", c.do_normalize);
  c.return_attention_mask = f.boolean("return_attention_mask", c.return_attention_mask);
  c.padding_value = static_cast<float>(f.number("padding_value", 0.0));
  const int64_t feature_size = f.integer("feature_size", 1);
  MMFUSE_CHECK(feature_size == 1, unsupported,
               where + ": feature_size must be 1 (raw waveform input)");
  return c;
}

void wav2vec2_normalize(std::vector<float>& samples) {
  if (samples.empty()) return;
  // Double accumulation: the result matches numpy's float32 pairwise sums to ~1e-7.
  double sum = 0.0;
  for (float v : samples) sum += v;
  const double mean = sum / static_cast<double>(samples.size());
  double sq = 0.0;
  for (float v : samples) sq += (v - mean) * (v - mean);
  const double var = sq / static_cast<double>(samples.size());
  const double inv = 1.0 / std::sqrt(var + 1e-7);
  for (float& v : samples) v = static_cast<float>((v - mean) * inv);
}

}  // namespace mmfuse
