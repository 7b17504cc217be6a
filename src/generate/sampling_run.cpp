#include "generate/sampling_run.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "mmfuse/error.h"

namespace mmfuse {

size_t argmax_index(const float* scores, size_t n) {
  size_t best = 0;
  for (size_t i = 1; i < n; ++i)
    if (scores[i] > scores[best] || (std::isnan(scores[i]) && !std::isnan(scores[best]))) best = i;
  return best;
}

size_t sample_index(const float* scores, size_t n, std::mt19937_64& rng) {
  float max = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < n; ++i) max = std::max(max, scores[i]);
  MMFUSE_CHECK(!(std::isinf(max) && max < 0), bad_input,
               "generation: every token was filtered out (all scores are -inf)");
  std::vector<double> weights(n);
  double total = 0.0;
  for (size_t i = 0; i < n; ++i) {
    weights[i] = std::exp(static_cast<double>(scores[i]) - max);
    total += weights[i];
  }
  const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53 * total;
  double cumulative = 0.0;
  size_t last_positive = 0;
  for (size_t i = 0; i < n; ++i) {
    if (weights[i] <= 0.0) continue;
    last_positive = i;
    cumulative += weights[i];
    if (u < cumulative) return i;
  }
  return last_positive;  // rounding left u at the very top
}

uint64_t generation_seed(const GenerationConfig& config) {
  if (config.seed) return *config.seed;
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) ^ device();
}

SamplingRun::SamplingRun(const GenerationRequest& request)
    : request_(request),
      plan_(plan_generation(request)),
      processors_(request.config, plan_.eos, plan_.input_ids.size()),
      stops_(request.tokenizer, request.config.stop_strings),
      rng_(generation_seed(request.config)) {
  MMFUSE_ASSERT(!plan_.beam_search);
  const size_t count =
      request.config.do_sample ? static_cast<size_t>(request.config.num_return_sequences) : 1;
  sequences_.assign(count, Sequence{plan_.input_ids});
}

bool SamplingRun::all_finished() const {
  return std::all_of(sequences_.begin(), sequences_.end(),
                     [](const Sequence& s) { return s.finished; });
}

bool SamplingRun::cancel_requested() const {
  return request_.cancel != nullptr && request_.cancel->load(std::memory_order_relaxed);
}

void SamplingRun::finish(Sequence& s, FinishReason reason) {
  s.finished = true;
  s.reason = reason;
}

void SamplingRun::choose(size_t seq, float* logits, size_t vocab) {
  Sequence& s = sequences_[seq];
  MMFUSE_ASSERT(!s.finished);
  processors_.process(s.ids, logits, vocab);
  size_t token = 0;
  if (request_.config.do_sample) {
    processors_.warp(logits, vocab);
    token = sample_index(logits, vocab, rng_);
  } else {
    token = argmax_index(logits, vocab);
  }
  // The chosen token's log-probability under the distribution it came from.
  float max = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < vocab; ++i) max = std::max(max, logits[i]);
  double sum = 0.0;
  for (size_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - max);
  s.score += static_cast<double>(logits[token]) - max - std::log(sum);

  const auto id = static_cast<int32_t>(token);
  s.ids.push_back(id);
  ++s.new_tokens;

  // The stops, in the order transformers' criteria would name a reason: a
  // sequence that both ends with eos and reaches max_length stopped on eos.
  const auto new_span = std::span<const int32_t>(s.ids).subspan(plan_.input_ids.size());
  if (std::find(plan_.eos.begin(), plan_.eos.end(), id) != plan_.eos.end() ||
      stops_.matches(new_span))
    finish(s, FinishReason::stop);
  else if (s.new_tokens >= plan_.max_new_tokens || s.new_tokens >= plan_.position_room)
    finish(s, FinishReason::length);

  if (seq == 0 && request_.on_token && !request_.on_token(id)) {
    if (!s.finished) finish(s, FinishReason::cancelled);
    cancel();
  }
}

void SamplingRun::cancel() {
  for (auto& s : sequences_)
    if (!s.finished) finish(s, FinishReason::cancelled);
}

GenerationResult SamplingRun::result() const {
  GenerationResult out;
  out.prompt_positions = request_.prompt.length();
  for (const auto& s : sequences_) {
    GeneratedSequence g;
    g.tokens.assign(s.ids.begin() + static_cast<std::ptrdiff_t>(plan_.input_ids.size()),
                    s.ids.end());
    g.finish_reason = s.reason;
    g.score = s.score;
    out.sequences.push_back(std::move(g));
  }
  return out;
}

}  // namespace mmfuse
