// wav2vec2-CTC hyper-parameters from config.json (Hugging Face Wav2Vec2Config,
// transformers 4.44 defaults for absent keys) and the feature extractor's
// preprocessor_config.json (Wav2Vec2FeatureExtractor).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/ops.h"

namespace mmfuse {

struct Wav2Vec2Config {
  // Feature encoder: one 1-D conv per entry (channels, kernel, stride).
  std::vector<int> conv_dim{512, 512, 512, 512, 512, 512, 512};
  std::vector<int> conv_kernel{10, 3, 3, 3, 3, 2, 2};
  std::vector<int> conv_stride{5, 2, 2, 2, 2, 2, 2};
  bool conv_bias = false;
  // "group": GroupNorm (one group per channel) after conv 0 only (base);
  // "layer": LayerNorm over channels after every conv (large / lv60).
  bool feat_extract_norm_layer = false;
  Activation feat_extract_activation = Activation::gelu;
  int hidden_size = 768;
  int num_hidden_layers = 12;
  int num_attention_heads = 12;
  int intermediate_size = 3072;
  Activation hidden_act = Activation::gelu;
  float layer_norm_eps = 1e-5f;
  bool do_stable_layer_norm = false;  // pre-LN encoder (lv60) instead of post-LN (base)
  int num_conv_pos_embeddings = 128;
  int num_conv_pos_embedding_groups = 16;
  int vocab_size = 32;
  int pad_token_id = 0;  // the CTC blank

  // Samples per output frame: the product of the conv strides (320).
  int inputs_to_logits_ratio() const;
  // Output frames for `samples` input samples (0 if shorter than the receptive field).
  size_t frames_for(size_t samples) const;
  // Samples one output frame sees (400 for the standard stack).
  size_t receptive_field() const;

  // Parses a Wav2Vec2ForCTC config.json; `where` (the file) is named in errors.
  static Wav2Vec2Config from_json(const nlohmann::json& config, const std::string& where);
};

// Wav2Vec2FeatureExtractor settings (preprocessor_config.json).
struct Wav2Vec2FeatureConfig {
  int sampling_rate = 16000;
  bool do_normalize = true;  // zero mean, unit variance per utterance
  bool return_attention_mask = false;
  float padding_value = 0.0f;

  // A missing file means the class defaults.
  static Wav2Vec2FeatureConfig from_json(const nlohmann::json& config, const std::string& where);
};

// The feature extractor's normalisation, in place: (x - mean) / sqrt(var + 1e-7)
// with the population variance over the whole utterance (as HF computes it).
void wav2vec2_normalize(std::vector<float>& samples);

}  // namespace mmfuse
