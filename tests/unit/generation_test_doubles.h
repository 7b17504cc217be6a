// Test doubles for the generation loop: a toy LanguageModel whose next-token
// logits are a fixed function of (last token, sequence length) — the same
// function tests/fixtures/generation/toy.py gives transformers — and a tiny
// GenerativeTokenizer for stop strings.
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mmfuse/error.h"
#include "models/language_model.h"
#include "text/generative_tokenizer.h"

namespace mmfuse::test {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  uint64_t z = x;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// toy.py's toy_logit: a float32 in [-4, 4).
inline float toy_logit(uint64_t seed, int64_t last, int64_t position, int64_t v) {
  const uint64_t h =
      splitmix64(seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(last) * 1000003ull +
                 static_cast<uint64_t>(position) * 10007ull + static_cast<uint64_t>(v));
  return static_cast<float>(static_cast<double>(h >> 11) * 0x1.0p-53 * 8.0 - 4.0);
}

class ToyState : public DecoderState {
 public:
  std::vector<int32_t> history;  // decoder tokens fed so far
  uint64_t seed = 0;             // the table (encoder-decoder: mixed with the encoder input)
  std::unique_ptr<DecoderState> clone() const override { return std::make_unique<ToyState>(*this); }
  size_t positions() const override { return history.size(); }
  size_t cache_bytes() const override { return history.size() * sizeof(int32_t); }
};

class ToyLanguageModel : public LanguageModel {
 public:
  // decoder_start >= 0 makes it an encoder-decoder model.
  ToyLanguageModel(int vocab, uint64_t table_seed, size_t max_positions = 512,
                   int32_t decoder_start = -1)
      : vocab_(vocab),
        seed_(table_seed),
        max_positions_(max_positions),
        decoder_start_(decoder_start) {}

  const std::string& name() const override { return name_; }
  int vocab_size() const override { return vocab_; }
  int hidden_size() const override { return 4; }
  size_t max_positions() const override { return max_positions_; }
  int32_t decoder_start_token() const override { return decoder_start_; }

  std::unique_ptr<DecoderState> prefill(const PromptInput& prompt, float* logits,
                                        const LoraAdapter* = nullptr) const override {
    prefills.fetch_add(1);
    auto state = std::make_unique<ToyState>();
    std::vector<int32_t> ids;
    for (const auto& segment : prompt.segments) {
      if (segment.rows == 0) {
        ids.insert(ids.end(), segment.ids.begin(), segment.ids.end());
      } else {
        // An embedded row stands for the token its first value names.
        for (size_t r = 0; r < segment.rows; ++r)
          ids.push_back(static_cast<int32_t>(std::fabs(segment.embeddings[r * 4]) * 1000.0f) %
                        vocab_);
      }
    }
    if (decoder_start_ >= 0) {
      uint64_t key = 0;
      for (int32_t id : ids) key = key * 31 + static_cast<uint64_t>(id) + 1;
      state->seed = seed_ ^ splitmix64(key);
      state->history = {decoder_start_};
    } else {
      state->seed = seed_;
      state->history = ids;
    }
    fill(*state, logits);
    return state;
  }

  void decode(DecoderState* const* states, const int32_t* tokens, size_t n,
              float* logits) const override {
    decodes.fetch_add(1);
    size_t widest = widest_batch.load();
    while (n > widest && !widest_batch.compare_exchange_weak(widest, n)) {
    }
    for (size_t i = 0; i < n; ++i) {
      auto* state = dynamic_cast<ToyState*>(states[i]);
      MMFUSE_ASSERT(state != nullptr);
      MMFUSE_ASSERT(tokens[i] >= 0 && tokens[i] < vocab_);
      MMFUSE_ASSERT(state->history.size() < max_positions_);
      state->history.push_back(tokens[i]);
      fill(*state, logits + i * static_cast<size_t>(vocab_));
    }
  }

  mutable std::atomic<size_t> prefills{0};
  mutable std::atomic<size_t> decodes{0};
  mutable std::atomic<size_t> widest_batch{0};

 private:
  void fill(const ToyState& state, float* logits) const {
    const int64_t last = state.history.empty() ? 0 : state.history.back();
    for (int v = 0; v < vocab_; ++v)
      logits[v] = toy_logit(state.seed, last, static_cast<int64_t>(state.history.size()), v);
  }

  int vocab_;
  uint64_t seed_;
  size_t max_positions_;
  int32_t decoder_start_;
  std::string name_ = "toy";
};

// id -> a fixed piece of text; ids 0..2 are the special <pad> <s> </s>.
class ToyTokenizer : public GenerativeTokenizer {
 public:
  explicit ToyTokenizer(std::vector<std::string> pieces) : pieces_(std::move(pieces)) {}
  std::vector<int32_t> encode(const std::string& text, bool) const override {
    std::vector<int32_t> ids;
    for (size_t at = 0; at < text.size();) {
      int32_t best = -1;
      size_t best_len = 0;
      for (size_t id = 3; id < pieces_.size(); ++id)
        if (pieces_[id].size() > best_len && text.compare(at, pieces_[id].size(), pieces_[id]) == 0)
          best = static_cast<int32_t>(id), best_len = pieces_[id].size();
      MMFUSE_CHECK(best >= 0, bad_input, "toy tokenizer: cannot encode");
      ids.push_back(best);
      at += best_len;
    }
    return ids;
  }
  std::vector<std::string> tokenize(const std::string& text) const override {
    std::vector<std::string> out;
    for (int32_t id : encode(text, false)) out.push_back(pieces_[static_cast<size_t>(id)]);
    return out;
  }
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const override {
    std::string text;
    for (int32_t id : ids) {
      MMFUSE_CHECK(id >= 0 && static_cast<size_t>(id) < pieces_.size(), bad_input,
                   "toy tokenizer: unknown id");
      if (skip_special_tokens && is_special(id)) continue;
      text += pieces_[static_cast<size_t>(id)];
    }
    return text;
  }
  std::string id_to_token(int32_t id) const override { return pieces_.at(static_cast<size_t>(id)); }
  int32_t token_to_id(const std::string& token) const override {
    for (size_t i = 0; i < pieces_.size(); ++i)
      if (pieces_[i] == token) return static_cast<int32_t>(i);
    return -1;
  }
  size_t size() const override { return pieces_.size(); }
  bool is_special(int32_t id) const override { return id >= 0 && id < 3; }
  int32_t bos_id() const override { return 1; }
  int32_t eos_id() const override { return 2; }
  int32_t pad_id() const override { return 0; }
  int32_t unk_id() const override { return -1; }
  std::string special_token(const std::string& attribute) const override {
    if (attribute == "bos_token") return "<s>";
    if (attribute == "eos_token") return "</s>";
    if (attribute == "pad_token") return "<pad>";
    return "";
  }

 private:
  std::vector<std::string> pieces_;
};

inline PromptInput ids_prompt(std::vector<int32_t> ids) {
  PromptInput prompt;
  prompt.segments.push_back({ids, {}, 0});
  prompt.context_ids = std::move(ids);
  return prompt;
}

}  // namespace mmfuse::test
