// transformers 4.44's logits processors and warpers for the GenerationConfig
// fields mmfuse reads, with the same arithmetic (float32 scores, float32
// scalars) and tie rules, applied to one row of scores [vocab].
//
// Order (LogitsProcessorList): the processors as `_get_logits_processor`
// appends them (repetition_penalty, no_repeat_ngram_size, min_length,
// min_new_tokens), then, when sampling, the warpers as `_get_logits_warper`
// appends them (temperature, top_k, top_p, min_p).
//
// Thread-safety: free functions and const methods only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "io/generation_config.h"

namespace mmfuse {

// HF keeps a config's floats as Python doubles (0.9 from JSON); GenerationConfig
// holds floats (0.9f). This gives back the shortest decimal that rounds to
// `value`, as a double, so arithmetic done in double by HF (1 - top_p,
// length ** length_penalty) uses the same number HF uses.
double decimal_double(float value);

// RepetitionPenaltyLogitsProcessor: every id in `ids` (each once) has its
// score multiplied by `penalty` when negative, divided by it otherwise.
void apply_repetition_penalty(std::span<const int32_t> ids, float penalty, float* scores,
                              size_t vocab);
// NoRepeatNGramLogitsProcessor: bans each token that would complete an
// n-gram already present in `ids`.
void apply_no_repeat_ngram(std::span<const int32_t> ids, int ngram_size, float* scores,
                           size_t vocab);
// MinLengthLogitsProcessor: eos ids get -inf while ids.size() < min_length.
void apply_min_length(size_t cur_len, size_t min_length, std::span<const int32_t> eos,
                      float* scores, size_t vocab);
// MinNewTokensLengthLogitsProcessor: eos ids get -inf while fewer than
// min_new_tokens follow the first `prompt_length` ids.
void apply_min_new_tokens(size_t cur_len, size_t prompt_length, size_t min_new_tokens,
                          std::span<const int32_t> eos, float* scores, size_t vocab);

// TemperatureLogitsWarper: scores / temperature (float32 division).
void apply_temperature(float temperature, float* scores, size_t vocab);
// TopKLogitsWarper: k = min(max(top_k, min_tokens_to_keep), vocab); scores
// below the k-th largest become -inf (ties with it are kept).
void apply_top_k(int top_k, int min_tokens_to_keep, float* scores, size_t vocab);
// TopPLogitsWarper: sort ascending (stable), softmax, cumulative sum; tokens
// whose cumulative probability is <= 1 - top_p are removed, except the last
// min_tokens_to_keep of the sorted order.
void apply_top_p(float top_p, int min_tokens_to_keep, float* scores, size_t vocab);
// MinPLogitsWarper: tokens whose probability is below min_p * the largest
// probability are removed, except the first min_tokens_to_keep in descending
// (stable) order.
void apply_min_p(float min_p, int min_tokens_to_keep, float* scores, size_t vocab);

// log_softmax of one row, in place (beam search scores).
void log_softmax_row(float* scores, size_t vocab);

// One request's processors and warpers, built as transformers builds them.
class LogitsProcessorList {
 public:
  // eos: the config's eos ids; input_ids_length: the length of input_ids when
  // generation starts (context ids, or 1 for the decoder start token).
  LogitsProcessorList(const GenerationConfig& config, std::vector<int32_t> eos,
                      size_t input_ids_length);

  // The processors, to the scores of a sequence whose input_ids are `ids`.
  void process(std::span<const int32_t> ids, float* scores, size_t vocab) const;
  // The warpers (none unless do_sample).
  void warp(float* scores, size_t vocab) const;

  // The names of the HF classes in the order they run (tests, docs).
  std::vector<std::string> processor_names() const;
  std::vector<std::string> warper_names() const;

 private:
  enum class Step {
    repetition,
    no_repeat_ngram,
    min_length,
    min_new_tokens,
    temperature,
    top_k,
    top_p,
    min_p
  };
  std::vector<Step> processors_;
  std::vector<Step> warpers_;
  GenerationConfig config_;
  std::vector<int32_t> eos_;
  size_t input_ids_length_ = 0;
  size_t min_length_ = 0;  // after min_new_tokens is folded in, as _prepare_generated_length does
  int min_tokens_to_keep_ = 1;
};

}  // namespace mmfuse
