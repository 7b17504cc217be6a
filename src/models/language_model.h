// What the generation loop (src/generate) needs from a language model, for
// decoder-only models (Llama, OPT) and encoder-decoder ones (T5) alike: run a
// prompt once, then feed one token per sequence per step, many sequences in
// one batched call (continuous batching, beam search). Each sequence's cache
// (keys and values; for T5 also the encoder output) lives in a DecoderState
// the caller owns, so the model itself is immutable and shared.
//
// Thread-safety: all methods are const; calls with disjoint states may come
// from many threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mmfuse {

struct LoraAdapter;

// A piece of a prompt: token ids the model embeds itself, or rows already in
// its embedding space (projected image features, BLIP-2 query outputs).
struct PromptSegment {
  std::vector<int32_t> ids;       // used when rows == 0
  std::vector<float> embeddings;  // rows x hidden_size(), used when rows > 0
  size_t rows = 0;

  size_t length() const { return rows > 0 ? rows : ids.size(); }
};

struct PromptInput {
  // Decoder-only: the positions of the prompt. Encoder-decoder: the encoder
  // input (the decoder then starts from decoder_start_token()).
  std::vector<PromptSegment> segments;
  // The ids transformers' `generate` holds as input_ids before the first new
  // token (what repetition penalties and n-gram bans look at, and what it
  // returns in front of the new tokens); may differ from the embedded
  // positions (LLaVA keeps one <image> id for 576 rows; BLIP-2 keeps none).
  std::vector<int32_t> context_ids;

  size_t length() const {
    size_t n = 0;
    for (const auto& s : segments) n += s.length();
    return n;
  }
};

// One sequence's cache. clone() copies it (beam search forks sequences).
class DecoderState {
 public:
  virtual ~DecoderState() = default;
  virtual std::unique_ptr<DecoderState> clone() const = 0;
  // Decoder positions filled so far (the next token's position).
  virtual size_t positions() const = 0;
  // Bytes the cache holds now.
  virtual size_t cache_bytes() const = 0;
};

class LanguageModel {
 public:
  virtual ~LanguageModel() = default;
  virtual const std::string& name() const = 0;
  // Rows of the logits (config vocab_size; may exceed the tokenizer's size).
  virtual int vocab_size() const = 0;
  virtual int hidden_size() const = 0;
  // Longest sequence the model takes (max_position_embeddings); a prompt plus
  // new tokens beyond it is a bad_input error.
  virtual size_t max_positions() const = 0;
  // Encoder-decoder models: the decoder's first input id; -1 for decoder-only.
  virtual int32_t decoder_start_token() const { return -1; }

  // Runs the whole prompt and returns its state; writes the logits of the
  // next token ([vocab_size()]) to `logits`. `adapter` (may be null) is a LoRA
  // adapter applied unmerged to this sequence for its whole life.
  virtual std::unique_ptr<DecoderState> prefill(const PromptInput& prompt, float* logits,
                                                const LoraAdapter* adapter = nullptr) const = 0;
  // One step for n sequences at once: feeds tokens[i] to states[i] and writes
  // its next-token logits to logits[i * vocab_size()].
  virtual void decode(DecoderState* const* states, const int32_t* tokens, size_t n,
                      float* logits) const = 0;
};

}  // namespace mmfuse
