// The Llama family decoder (Llama 1/2/3, Vicuna, TinyLlama, the language model
// of LLaVA-1.5) as transformers' LlamaForCausalLM computes it in float32:
// RMSNorm, rotary embeddings (rope_theta and the linear / dynamic / llama3
// rope_scaling kinds), grouped-query attention, SiLU-gated MLP, tied or untied
// lm_head, with a key/value cache per sequence. Weights stay in their stored
// type (F16 / BF16 memory-mapped, or F32), see core/typed_linear.h.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "core/typed_linear.h"
#include "io/model_folder.h"
#include "models/language_model.h"

namespace mmfuse {

struct RopeScaling {
  enum class Kind { none, linear, dynamic, llama3 } kind = Kind::none;
  double factor = 1.0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  int original_max_position_embeddings = 0;               // llama3, dynamic
};

struct LlamaConfig {
  int vocab_size = 32000;
  int hidden_size = 4096;
  int intermediate_size = 11008;
  int num_hidden_layers = 32;
  int num_attention_heads = 32;
  int num_key_value_heads = 32;
  int head_dim = 128;
  int max_position_embeddings = 2048;
  float rms_norm_eps = 1e-6f;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool attention_bias = false;
  bool mlp_bias = false;
  bool tie_word_embeddings = false;

  // A LlamaConfig object (config.json of a Llama folder, or LLaVA's
  // text_config) with LlamaConfig's class defaults; `where` names it in errors.
  static LlamaConfig from_json(const nlohmann::json& config, const std::string& where);
};

class LlamaModel final : public LanguageModel {
 public:
  // `prefix` is where the model's tensors start: "" for LlamaForCausalLM
  // ("model.layers.0...", "lm_head.weight"), "language_model." inside LLaVA.
  LlamaModel(WeightStore& store, const LlamaConfig& config, const std::string& prefix,
             std::shared_ptr<ThreadPool> pool, std::string name);

  const std::string& name() const override { return name_; }
  int vocab_size() const override { return config_.vocab_size; }
  int hidden_size() const override { return config_.hidden_size; }
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

  const LlamaConfig& config() const { return config_; }
  // The embedding row of a token (what a prompt segment of ids becomes).
  void embed(int32_t token, float* out) const;
  // Sum of the bytes of the weights this model reads per token.
  size_t weight_bytes() const;

 private:
  struct Layer {
    std::vector<float> input_norm, post_attention_norm;  // RMSNorm weights, float32
    TypedLinear q, k, v, o, gate, up, down;
    std::string module[7];  // state_dict paths of q..down, for LoRA lookups
  };
  struct Slice;  // rows of one sequence in a forward pass
  void forward(float* x, std::vector<Slice>& slices) const;
  // The prompt's rows: token embeddings and pre-embedded segments, [length, hidden].
  std::vector<float> embed_prompt(const PromptInput& prompt) const;
  void project(const float* x, size_t rows, const TypedLinear& lin, const std::string& module,
               const std::vector<Slice>& slices, float* y) const;
  // y += the unmerged LoRA update of `module` for the sequences whose adapter has one.
  void add_lora(const float* x, const TypedLinear& lin, const std::string& module,
                const std::vector<Slice>& slices, float* y) const;

  LlamaConfig config_;
  std::shared_ptr<ThreadPool> pool_;
  std::string name_;
  TypedLinear embed_tokens_;  // [vocab, hidden], used as a table
  std::vector<Layer> layers_;
  std::vector<float> final_norm_;
  TypedLinear lm_head_;
  std::vector<float> inv_freq_;  // rotary frequencies for positions within the trained length
};

}  // namespace mmfuse
