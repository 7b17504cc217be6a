// The OPT decoder (facebook/opt-*, the language model of BLIP-2 OPT) as
// transformers' OPTForCausalLM computes it in float32: learned positions with
// an offset of 2, pre-LN (or post-LN as opt-350m) layers with biased q/k/v/out
// projections and a two-layer MLP, the optional project_in / project_out
// between the embedding width and the hidden width, and a head tied to the
// token embeddings (or not), with a key/value cache per sequence. Weights stay
// in their stored type (F16 / BF16 memory-mapped, or F32), see
// core/typed_linear.h.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/ops.h"
#include "core/thread_pool.h"
#include "core/typed_linear.h"
#include "io/model_folder.h"
#include "models/language_model.h"

namespace mmfuse {

struct OptConfig {
  int vocab_size = 50272;
  int hidden_size = 768;
  int ffn_dim = 3072;
  int num_hidden_layers = 12;
  int num_attention_heads = 12;
  int max_position_embeddings = 2048;
  int word_embed_proj_dim = 768;  // the token embedding width; != hidden_size adds project_in/out
  bool do_layer_norm_before = true;      // false (opt-350m): post-LN, no final layer norm
  bool remove_final_layer_norm = false;  // `_remove_final_layer_norm`
  bool enable_bias = true;
  bool layer_norm_elementwise_affine = true;
  bool tie_word_embeddings = true;
  Activation activation = Activation::relu;
  int32_t bos_token_id = 2;
  int32_t pad_token_id = 1;
  std::vector<int32_t> eos_token_ids{2};

  // Whether the decoder ends with final_layer_norm (HF: pre-LN and not removed).
  bool has_final_layer_norm() const { return do_layer_norm_before && !remove_final_layer_norm; }
  int head_dim() const { return hidden_size / num_attention_heads; }

  // An OPTConfig object (config.json of an OPT folder, or BLIP-2's
  // text_config) with OPTConfig's class defaults; `where` names it in errors.
  static OptConfig from_json(const nlohmann::json& config, const std::string& where);
};

class OptModel final : public LanguageModel {
 public:
  // `prefix` is where the model's tensors start, as for LlamaModel: "" for an
  // OPTForCausalLM folder ("model.decoder.layers.0...", "lm_head.weight"),
  // "language_model." inside BLIP-2. Checkpoints saved from OPTModel
  // ("decoder.layers.0...", facebook/opt-*) are found too. The head is
  // `prefix + "lm_head.weight"`, or the token embeddings when tied / absent.
  OptModel(WeightStore& store, const OptConfig& config, const std::string& prefix,
           std::shared_ptr<ThreadPool> pool, std::string name);

  const std::string& name() const override { return name_; }
  int vocab_size() const override { return config_.vocab_size; }
  // The width of a prompt's embedding rows: word_embed_proj_dim (what
  // embed_tokens gives and project_in takes), equal to the hidden size
  // except in opt-350m.
  int hidden_size() const override { return config_.word_embed_proj_dim; }
  size_t max_positions() const override {
    return static_cast<size_t>(config_.max_position_embeddings);
  }
  std::unique_ptr<DecoderState> prefill(const PromptInput& prompt, float* logits,
                                        const LoraAdapter* adapter = nullptr) const override;
  void decode(DecoderState* const* states, const int32_t* tokens, size_t n,
              float* logits) const override;

  // The logits of every prompt position, [length, vocab_size] (HF's forward
  // without a cache): scoring a text, and the per-position parity checks.
  std::vector<float> prompt_logits(const PromptInput& prompt,
                                   const LoraAdapter* adapter = nullptr) const;

  const OptConfig& config() const { return config_; }
  // The embedding row of a token, word_embed_proj_dim wide (what a prompt
  // segment of ids becomes before project_in).
  void embed(int32_t token, float* out) const;
  // Sum of the bytes of the weights this model reads per token.
  size_t weight_bytes() const;

 private:
  struct Norm {
    std::vector<float> weight, bias;  // float32; ones / zeros without elementwise affine
  };
  struct Layer {
    Norm attn_norm, ffn_norm;  // self_attn_layer_norm, final_layer_norm
    TypedLinear q, k, v, out, fc1, fc2;
    std::string module[6];  // state_dict paths of q..fc2, for LoRA lookups
  };
  struct Slice;  // rows of one sequence in a forward pass
  // x: [rows, hidden] after the position embeddings; runs every layer.
  void forward(float* x, std::vector<Slice>& slices) const;
  // Token rows, project_in and the positions of the slice: the decoder's input.
  void embed_rows(const float* embedded, const std::vector<Slice>& slices, float* x) const;
  // final_layer_norm, project_out and the head for `rows` rows of x.
  void head(float* x, size_t rows, float* logits) const;
  std::vector<float> embed_prompt(const PromptInput& prompt) const;
  void add_lora(const float* x, const TypedLinear& lin, const std::string& module,
                const std::vector<Slice>& slices, float* y) const;
  void norm_rows(const float* x, size_t rows, const Norm& norm, float* y) const;

  OptConfig config_;
  std::shared_ptr<ThreadPool> pool_;
  std::string name_;
  TypedLinear embed_tokens_;              // [vocab, word_embed_proj_dim], used as a table
  TypedLinear embed_positions_;           // [max_positions + 2, hidden], used as a table
  TypedLinear project_in_, project_out_;  // weight == nullptr when absent
  std::vector<Layer> layers_;
  Norm final_norm_;  // empty when the config has no final layer norm
  TypedLinear lm_head_;
};

}  // namespace mmfuse
