#include "generate/logits_processors.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <unordered_set>

namespace mmfuse {

namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();

void mask_eos(std::span<const int32_t> eos, float* scores, size_t vocab) {
  for (int32_t id : eos)
    if (id >= 0 && static_cast<size_t>(id) < vocab) scores[id] = kMinusInf;
}

// softmax of a row in double (the probabilities top_p / min_p compare).
std::vector<double> softmax(const float* scores, size_t n) {
  std::vector<double> p(n);
  float max = kMinusInf;
  for (size_t i = 0; i < n; ++i) max = std::max(max, scores[i]);
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    p[i] = std::isinf(max) && max < 0 ? 1.0 : std::exp(static_cast<double>(scores[i]) - max);
    sum += p[i];
  }
  for (auto& v : p) v /= sum;
  return p;
}

}  // namespace

double decimal_double(float value) {
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer) - 1, value);
  if (ec != std::errc()) return value;
  *end = '\0';
  return std::strtod(buffer, nullptr);
}

void apply_repetition_penalty(std::span<const int32_t> ids, float penalty, float* scores,
                              size_t vocab) {
  // gather then scatter: a repeated id is penalised once, from its original score.
  std::unordered_set<int32_t> seen;
  for (int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= vocab || !seen.insert(id).second) continue;
    const float s = scores[id];
    scores[id] = s < 0 ? s * penalty : s / penalty;
  }
}

void apply_no_repeat_ngram(std::span<const int32_t> ids, int ngram_size, float* scores,
                           size_t vocab) {
  if (ngram_size <= 0) return;
  const size_t n = static_cast<size_t>(ngram_size);
  const size_t cur_len = ids.size();
  if (cur_len + 1 < n || cur_len < n) return;  // no complete n-gram yet
  // The n-1 last ids are the prefix a new token would complete.
  const auto tail = ids.subspan(cur_len - (n - 1));
  for (size_t start = 0; start + n <= cur_len; ++start) {
    if (std::equal(tail.begin(), tail.end(), ids.begin() + start)) {
      const int32_t banned = ids[start + n - 1];
      if (banned >= 0 && static_cast<size_t>(banned) < vocab) scores[banned] = kMinusInf;
    }
  }
}

void apply_min_length(size_t cur_len, size_t min_length, std::span<const int32_t> eos,
                      float* scores, size_t vocab) {
  if (cur_len < min_length) mask_eos(eos, scores, vocab);
}

void apply_min_new_tokens(size_t cur_len, size_t prompt_length, size_t min_new_tokens,
                          std::span<const int32_t> eos, float* scores, size_t vocab) {
  const auto new_tokens =
      static_cast<std::ptrdiff_t>(cur_len) - static_cast<std::ptrdiff_t>(prompt_length);
  if (new_tokens < static_cast<std::ptrdiff_t>(min_new_tokens)) mask_eos(eos, scores, vocab);
}

void apply_temperature(float temperature, float* scores, size_t vocab) {
  for (size_t i = 0; i < vocab; ++i) scores[i] = scores[i] / temperature;
}

void apply_top_k(int top_k, int min_tokens_to_keep, float* scores, size_t vocab) {
  if (vocab == 0) return;
  const size_t k = std::min(static_cast<size_t>(std::max(top_k, min_tokens_to_keep)), vocab);
  std::vector<float> sorted(scores, scores + vocab);
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(k - 1),
                   sorted.end(), std::greater<float>());
  const float kth = sorted[k - 1];
  for (size_t i = 0; i < vocab; ++i)
    if (scores[i] < kth) scores[i] = kMinusInf;
}

void apply_top_p(float top_p, int min_tokens_to_keep, float* scores, size_t vocab) {
  if (vocab == 0) return;
  // torch.sort ascending (stable on CPU: equal scores keep index order).
  std::vector<size_t> order(vocab);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  std::vector<float> sorted(vocab);
  for (size_t i = 0; i < vocab; ++i) sorted[i] = scores[order[i]];
  const std::vector<double> probs = softmax(sorted.data(), vocab);
  // `cumsum <= 1 - top_p`: 1 - top_p is a Python double, compared as float32.
  const float threshold = static_cast<float>(1.0 - decimal_double(top_p));
  const size_t keep_from =
      vocab - std::min(vocab, static_cast<size_t>(std::max(min_tokens_to_keep, 0)));
  double cumulative = 0.0;
  std::vector<char> remove(vocab, 0);
  for (size_t i = 0; i < vocab; ++i) {
    cumulative += probs[i];
    remove[i] = i < keep_from && static_cast<float>(cumulative) <= threshold;
  }
  for (size_t i = 0; i < vocab; ++i)
    if (remove[i]) scores[order[i]] = kMinusInf;
}

void apply_min_p(float min_p, int min_tokens_to_keep, float* scores, size_t vocab) {
  if (vocab == 0) return;
  const std::vector<double> probs = softmax(scores, vocab);
  const double top = *std::max_element(probs.begin(), probs.end());
  const double scaled = static_cast<double>(static_cast<float>(min_p * static_cast<float>(top)));
  // argsort descending (stable); the first min_tokens_to_keep are never removed.
  std::vector<size_t> order(vocab);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  const size_t keep = std::min(vocab, static_cast<size_t>(std::max(min_tokens_to_keep, 0)));
  std::vector<char> remove(vocab, 0);
  for (size_t rank = keep; rank < vocab; ++rank) {
    const size_t i = order[rank];
    remove[i] = static_cast<float>(probs[i]) < scaled;
  }
  for (size_t i = 0; i < vocab; ++i)
    if (remove[i]) scores[i] = kMinusInf;
}

void log_softmax_row(float* scores, size_t vocab) {
  if (vocab == 0) return;
  float max = kMinusInf;
  for (size_t i = 0; i < vocab; ++i) max = std::max(max, scores[i]);
  if (std::isinf(max) && max < 0) return;  // all -inf: nothing to normalise
  double sum = 0.0;
  for (size_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(scores[i]) - max);
  const double log_sum = std::log(sum);
  for (size_t i = 0; i < vocab; ++i)
    scores[i] = static_cast<float>(static_cast<double>(scores[i]) - max - log_sum);
}

LogitsProcessorList::LogitsProcessorList(const GenerationConfig& config, std::vector<int32_t> eos,
                                         size_t input_ids_length)
    : config_(config), eos_(std::move(eos)), input_ids_length_(input_ids_length) {
  // _prepare_generated_length: min_new_tokens, when set, replaces min_length.
  min_length_ = config.min_new_tokens > 0
                    ? static_cast<size_t>(config.min_new_tokens) + input_ids_length
                    : static_cast<size_t>(std::max(config.min_length, 0));
  const bool has_eos = !eos_.empty();
  if (config.repetition_penalty != 1.0f) processors_.push_back(Step::repetition);
  if (config.no_repeat_ngram_size > 0) processors_.push_back(Step::no_repeat_ngram);
  if (has_eos && min_length_ > 0) processors_.push_back(Step::min_length);
  if (has_eos && config.min_new_tokens > 0) processors_.push_back(Step::min_new_tokens);

  if (!config.do_sample) return;
  // Beam sampling keeps one more token than there are eos ids (a non-eos continuation).
  min_tokens_to_keep_ =
      config.num_beams > 1 ? (has_eos ? static_cast<int>(eos_.size()) + 1 : 2) : 1;
  if (config.temperature != 1.0f) warpers_.push_back(Step::temperature);
  if (config.top_k != 0) warpers_.push_back(Step::top_k);
  if (config.top_p < 1.0f) warpers_.push_back(Step::top_p);
  if (config.min_p) warpers_.push_back(Step::min_p);
}

void LogitsProcessorList::process(std::span<const int32_t> ids, float* scores, size_t vocab) const {
  for (Step step : processors_) {
    switch (step) {
      case Step::repetition:
        apply_repetition_penalty(ids, config_.repetition_penalty, scores, vocab);
        break;
      case Step::no_repeat_ngram:
        apply_no_repeat_ngram(ids, config_.no_repeat_ngram_size, scores, vocab);
        break;
      case Step::min_length: apply_min_length(ids.size(), min_length_, eos_, scores, vocab); break;
      case Step::min_new_tokens:
        apply_min_new_tokens(ids.size(), input_ids_length_,
                             static_cast<size_t>(config_.min_new_tokens), eos_, scores, vocab);
        break;
      default: break;
    }
  }
}

void LogitsProcessorList::warp(float* scores, size_t vocab) const {
  for (Step step : warpers_) {
    switch (step) {
      case Step::temperature: apply_temperature(config_.temperature, scores, vocab); break;
      case Step::top_k: apply_top_k(config_.top_k, min_tokens_to_keep_, scores, vocab); break;
      case Step::top_p: apply_top_p(config_.top_p, min_tokens_to_keep_, scores, vocab); break;
      case Step::min_p: apply_min_p(*config_.min_p, min_tokens_to_keep_, scores, vocab); break;
      default: break;
    }
  }
}

namespace {
const char* step_name(int step) {
  static const char* const names[] = {"RepetitionPenaltyLogitsProcessor",
                                      "NoRepeatNGramLogitsProcessor",
                                      "MinLengthLogitsProcessor",
                                      "MinNewTokensLengthLogitsProcessor",
                                      "TemperatureLogitsWarper",
                                      "TopKLogitsWarper",
                                      "TopPLogitsWarper",
                                      "MinPLogitsWarper"};
  return names[step];
}
}  // namespace

std::vector<std::string> LogitsProcessorList::processor_names() const {
  std::vector<std::string> out;
  for (Step s : processors_) out.push_back(step_name(static_cast<int>(s)));
  return out;
}

std::vector<std::string> LogitsProcessorList::warper_names() const {
  std::vector<std::string> out;
  for (Step s : warpers_) out.push_back(step_name(static_cast<int>(s)));
  return out;
}

}  // namespace mmfuse
