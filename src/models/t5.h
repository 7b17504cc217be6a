// T5 / Flan-T5 (and the language model of BLIP-2 Flan-T5) as transformers'
// T5ForConditionalGeneration computes it in float32: an encoder over the
// prompt, a decoder that starts from decoder_start_token_id and cross-attends
// to the encoder output. T5 specifics: RMS layer norm without mean or bias,
// relative position buckets (bidirectional in the encoder, causal in the
// decoder) whose bias lives in layer 0 and is shared by every layer, no
// 1/sqrt(d) attention scaling, no biases, a ReLU or gated (GELU-tanh, ...)
// feed-forward, and the d_model^-0.5 rescale before a tied head. Weights stay
// in their stored type (F16 / BF16 memory-mapped, or F32, core/typed_linear.h).
//
// A DecoderState holds the decoder self-attention keys/values and the
// cross-attention keys/values, computed once from the encoder output at
// prefill (shared, read-only, by the clones beam search makes).
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

struct T5Config {
  int vocab_size = 32128;
  int d_model = 512;
  int d_kv = 64;
  int d_ff = 2048;
  int num_layers = 6;
  int num_decoder_layers = 6;
  int num_heads = 8;
  int relative_attention_num_buckets = 32;
  int relative_attention_max_distance = 128;
  float layer_norm_epsilon = 1e-6f;
  // feed_forward_proj "relu" / "gated-gelu" / "gated-silu" ...: the activation
  // (dense_act_fn) and whether wi is split into wi_0 (activated) and wi_1.
  enum class Activation { relu, gelu, gelu_tanh, silu } activation = Activation::relu;
  bool gated = false;
  bool tie_word_embeddings = true;  // PretrainedConfig's default
  int32_t decoder_start_token_id = 0;
  std::vector<int32_t> eos_token_ids{1};
  int32_t pad_token_id = 0;
  int32_t bos_token_id = -1;  // -1: none
  // T5 has no position table, so no hard length limit: this bounds the
  // encoder input and the decoder positions (see kT5DefaultMaxPositions).
  size_t max_positions = 0;

  int inner_dim() const { return num_heads * d_kv; }

  // A T5Config object (config.json of a T5ForConditionalGeneration folder, or
  // BLIP-2's text_config) with T5Config's class defaults; `where` names it in
  // errors. Values transformers rejects are bad_input, values it accepts that
  // this engine does not compute are unsupported; both name the field.
  static T5Config from_json(const nlohmann::json& config, const std::string& where);
};

// The length limit T5Config::from_json sets. T5's relative buckets saturate
// beyond relative_attention_max_distance, so any length computes; what grows
// is the encoder's attention (length^2 scores per head) and the caches. 4096
// is 8x the 512 tokens T5 was trained with (n_positions, the tokenizers'
// model_max_length), far past where outputs stay useful, and small enough
// that a hostile prompt cannot take gigabytes.
constexpr size_t kT5DefaultMaxPositions = 4096;

// transformers' T5Attention._relative_position_bucket for one relative
// position (key position - query position), with its float32 arithmetic.
int t5_relative_position_bucket(int64_t relative_position, bool bidirectional, int num_buckets,
                                int max_distance);

class T5Model final : public LanguageModel {
 public:
  // `prefix` is where the model's tensors start: "" for a T5ForConditionalGeneration
  // folder ("shared.weight", "encoder.block.0..."), "language_model." inside BLIP-2.
  // Missing tensors are bad_input naming them.
  T5Model(WeightStore& store, const T5Config& config, const std::string& prefix,
          std::shared_ptr<ThreadPool> pool, std::string name);

  const std::string& name() const override { return name_; }
  int vocab_size() const override { return config_.vocab_size; }
  int hidden_size() const override { return config_.d_model; }
  size_t max_positions() const override { return config_.max_positions; }
  int32_t decoder_start_token() const override { return config_.decoder_start_token_id; }

  // Runs the encoder on the prompt and the decoder on the start token.
  // LoRA adapters are unsupported for T5 (a non-null adapter is refused).
  std::unique_ptr<DecoderState> prefill(const PromptInput& prompt, float* logits,
                                        const LoraAdapter* adapter = nullptr) const override;
  void decode(DecoderState* const* states, const int32_t* tokens, size_t n,
              float* logits) const override;

  // The encoder output after its final layer norm, [length, d_model]
  // (HF's encoder_last_hidden_state).
  std::vector<float> encode(const PromptInput& prompt) const;
  // The logits of every decoder position for the given decoder input ids,
  // [ids, vocab_size] (HF's forward with decoder_input_ids, no cache).
  std::vector<float> decoder_logits(const PromptInput& prompt,
                                    const std::vector<int32_t>& decoder_ids) const;

  const T5Config& config() const { return config_; }
  // The embedding row of a token (shared table of encoder and decoder).
  void embed(int32_t token, float* out) const;
  // Sum of the bytes of the weights this model reads per decoded token.
  size_t weight_bytes() const;

 private:
  struct Attention {
    std::vector<float> norm;  // the sub-layer's RMS norm weight
    TypedLinear q, k, v, o;
  };
  struct FeedForward {
    std::vector<float> norm;
    TypedLinear wi_0, wi_1, wo;  // wi_0 is `wi` when not gated
  };
  struct EncoderLayer {
    Attention self;
    FeedForward ffn;
  };
  struct DecoderLayer {
    Attention self, cross;
    FeedForward ffn;
  };
  struct Slice;  // rows of one sequence in a decoder pass

  std::vector<float> embed_prompt(const PromptInput& prompt) const;
  // Encoder layers and the final norm over x [length, d_model], in place.
  void run_encoder(float* x, size_t length) const;
  // A fresh state for an encoder output: the cross keys/values of every layer.
  std::unique_ptr<DecoderState> start_state(const float* encoder_out, size_t length) const;
  void run_decoder(float* x, std::vector<Slice>& slices) const;
  void feed_forward(const FeedForward& ffn, float* x, size_t rows) const;
  // Final decoder norm, the tied-head rescale and lm_head over x [rows, d_model].
  void head(float* x, size_t rows, float* logits) const;

  T5Config config_;
  std::shared_ptr<ThreadPool> pool_;
  std::string name_;
  TypedLinear shared_;  // [vocab, d_model], used as a table
  std::vector<EncoderLayer> encoder_;
  std::vector<DecoderLayer> decoder_;
  std::vector<float> encoder_final_norm_, decoder_final_norm_;
  TypedLinear lm_head_;
  // Layer 0's relative attention bias per head, by relative position:
  // encoder [heads][2 * max_positions - 1] indexed by key - query + max_positions - 1,
  // decoder [heads][max_positions] indexed by query - key (keys after the query are masked).
  std::vector<float> encoder_bias_, decoder_bias_;
};

}  // namespace mmfuse
