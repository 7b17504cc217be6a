#include "generate/beam_search.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "generate/logits_processors.h"
#include "generate/sampling_run.h"
#include "generate/stop_strings.h"
#include "mmfuse/error.h"

namespace mmfuse {

BeamHypotheses::BeamHypotheses(size_t num_beams, double length_penalty,
                               EarlyStopping early_stopping, size_t max_length)
    : num_beams_(num_beams),
      length_penalty_(length_penalty),
      early_stopping_(early_stopping),
      max_length_(max_length) {}

void BeamHypotheses::add(std::vector<int32_t> ids, double sum_logprobs, size_t generated_len,
                         FinishReason reason) {
  const double score = sum_logprobs / std::pow(static_cast<double>(generated_len), length_penalty_);
  if (beams_.size() < num_beams_ || score > worst_score_) {
    beams_.push_back({score, std::move(ids), reason});
    if (beams_.size() > num_beams_) {
      // sorted((score, index)): the worst goes (the earliest of equal scores),
      // the next worst becomes worst_score.
      std::vector<size_t> order(beams_.size());
      std::iota(order.begin(), order.end(), size_t{0});
      std::stable_sort(order.begin(), order.end(),
                       [&](size_t a, size_t b) { return beams_[a].score < beams_[b].score; });
      worst_score_ = beams_[order[1]].score;
      beams_.erase(beams_.begin() + static_cast<std::ptrdiff_t>(order[0]));
    } else {
      worst_score_ = std::min(score, worst_score_);
    }
  }
}

bool BeamHypotheses::is_done(double best_sum_logprobs, size_t cur_len,
                             size_t decoder_prompt_len) const {
  if (beams_.size() < num_beams_) return false;
  if (early_stopping_ == EarlyStopping::always) return true;
  double length = static_cast<double>(cur_len) - static_cast<double>(decoder_prompt_len);
  if (early_stopping_ == EarlyStopping::never && length_penalty_ > 0.0) {
    MMFUSE_CHECK(max_length_ > decoder_prompt_len, bad_input,
                 "generation: max_length is not larger than the decoder prompt length");
    length = static_cast<double>(max_length_) - static_cast<double>(decoder_prompt_len);
  }
  const double highest_attainable = best_sum_logprobs / std::pow(length, length_penalty_);
  return worst_score_ >= highest_attainable;
}

namespace {

struct Candidate {
  float score;
  size_t index;  // beam * vocab + token
};

// torch.topk(largest, sorted): best first; exact ties go to the lower index
// (torch leaves their order unspecified).
std::vector<Candidate> top_candidates(const std::vector<float>& scores, size_t count) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  count = std::min(count, scores.size());
  auto better = [&](size_t a, size_t b) {
    return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
  };
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(count), order.end(),
                    better);
  std::vector<Candidate> out;
  for (size_t i = 0; i < count; ++i) out.push_back({scores[order[i]], order[i]});
  return out;
}

// Beam sampling: torch.multinomial(softmax(scores), count) without
// replacement, then sorted by score (descending) — with our own generator.
std::vector<Candidate> sampled_candidates(const std::vector<float>& scores, size_t count,
                                          std::mt19937_64& rng) {
  std::vector<float> remaining = scores;
  std::vector<Candidate> out;
  count = std::min(count, scores.size());
  for (size_t i = 0; i < count; ++i) {
    const size_t index = sample_index(remaining.data(), remaining.size(), rng);
    out.push_back({scores[index], index});
    remaining[index] = -std::numeric_limits<float>::infinity();
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
  return out;
}

}  // namespace

GenerationResult beam_search(const GenerationRequest& request, const GenerationPlan& plan) {
  const LanguageModel& model = *request.model;
  const GenerationConfig& config = request.config;
  const size_t num_beams = static_cast<size_t>(config.num_beams);
  const size_t vocab = static_cast<size_t>(model.vocab_size());
  const size_t prompt_len = plan.input_ids.size();  // decoder_prompt_len
  LogitsProcessorList processors(config, plan.eos, prompt_len);
  StopStringMatcher stops(request.tokenizer, config.stop_strings);
  std::mt19937_64 rng(config.do_sample ? generation_seed(config) : 0);
  BeamHypotheses hypotheses(num_beams, decimal_double(config.length_penalty), config.early_stopping,
                            plan.max_length);
  auto is_eos = [&](int32_t id) {
    return std::find(plan.eos.begin(), plan.eos.end(), id) != plan.eos.end();
  };
  auto cancelled = [&] {
    return request.cancel != nullptr && request.cancel->load(std::memory_order_relaxed);
  };

  GenerationResult result;
  result.prompt_positions = request.prompt.length();

  // All beams start as the prompt; beams after the first start at -1e9 so the
  // first step draws from one beam only.
  std::vector<float> logits(num_beams * vocab);
  std::vector<std::unique_ptr<DecoderState>> states(num_beams);
  states[0] = model.prefill(request.prompt, logits.data(), request.adapter);
  for (size_t b = 1; b < num_beams; ++b)
    std::copy_n(logits.data(), vocab, logits.data() + b * vocab);
  std::vector<size_t> state_slot(num_beams,
                                 0);  // beam -> states[]; all share the prefill state at first
  std::vector<std::vector<int32_t>> ids(num_beams, plan.input_ids);
  std::vector<float> beam_scores(num_beams, -1e9f);
  beam_scores[0] = 0.0f;

  const size_t keep = std::max<size_t>(2, 1 + plan.eos.size()) * num_beams;
  MMFUSE_CHECK(keep <= num_beams * vocab, bad_input,
               "generation: num_beams is too large for the vocabulary");
  bool done = false;
  FinishReason stopped_by = FinishReason::length;
  std::vector<float> scores(num_beams * vocab);
  for (;;) {
    for (size_t b = 0; b < num_beams; ++b) {
      float* row = scores.data() + b * vocab;
      std::copy_n(logits.data() + b * vocab, vocab, row);
      log_softmax_row(row, vocab);
      processors.process(ids[b], row, vocab);
      processors.warp(row, vocab);
      for (size_t v = 0; v < vocab; ++v) row[v] = row[v] + beam_scores[b];
    }
    const std::vector<Candidate> candidates =
        config.do_sample ? sampled_candidates(scores, keep, rng) : top_candidates(scores, keep);

    // BeamSearchScorer.process.
    const size_t cur_len = ids[0].size() + 1;
    std::vector<Candidate> next;
    for (size_t rank = 0; rank < candidates.size() && next.size() < num_beams; ++rank) {
      const auto token = static_cast<int32_t>(candidates[rank].index % vocab);
      const size_t source = candidates[rank].index / vocab;
      if (is_eos(token)) {
        if (rank >= num_beams) continue;  // an eos ranked below the top num_beams is dropped
        hypotheses.add(ids[source], candidates[rank].score, cur_len - prompt_len,
                       FinishReason::stop);
      } else {
        next.push_back(candidates[rank]);
      }
    }
    MMFUSE_CHECK(next.size() == num_beams, bad_input,
                 "generation: beam search found fewer than num_beams candidates that are not eos");
    done = done || hypotheses.is_done(candidates[0].score, cur_len, prompt_len);

    // Reorder the beams: each new beam continues a source beam's ids and cache.
    std::vector<std::vector<int32_t>> next_ids(num_beams);
    std::vector<size_t> uses(num_beams, 0);
    for (size_t j = 0; j < num_beams; ++j) {
      const size_t source = next[j].index / vocab;
      next_ids[j] = ids[source];
      next_ids[j].push_back(static_cast<int32_t>(next[j].index % vocab));
      beam_scores[j] = next[j].score;
      ++uses[state_slot[source]];
    }
    ids = std::move(next_ids);

    // The stopping criteria: max_length (and the model's max_positions), stop
    // strings on every beam, the caller's cancel.
    const size_t generated = ids[0].size() - prompt_len;
    bool stop = false;
    if (done) {
      stop = true;
    } else if (ids[0].size() >= plan.max_length || generated >= plan.position_room) {
      stop = true, stopped_by = FinishReason::length;
    } else if (!stops.empty() &&
               std::all_of(ids.begin(), ids.end(), [&](const std::vector<int32_t>& beam) {
                 return stops.matches(std::span<const int32_t>(beam).subspan(prompt_len));
               })) {
      stop = true, stopped_by = FinishReason::stop;
    } else if (cancelled()) {
      stop = true, stopped_by = FinishReason::cancelled;
    }
    if (stop) break;

    std::vector<std::unique_ptr<DecoderState>> next_states(num_beams);
    std::vector<DecoderState*> batch(num_beams);
    std::vector<int32_t> tokens(num_beams);
    for (size_t j = 0; j < num_beams; ++j) {
      const size_t slot = state_slot[next[j].index / vocab];
      next_states[j] = --uses[slot] > 0 ? states[slot]->clone() : std::move(states[slot]);
      batch[j] = next_states[j].get();
      tokens[j] = ids[j].back();
    }
    states = std::move(next_states);
    std::iota(state_slot.begin(), state_slot.end(), size_t{0});
    model.decode(batch.data(), tokens.data(), num_beams, logits.data());
  }

  // BeamSearchScorer.finalize.
  if (!done) {
    for (size_t b = 0; b < num_beams; ++b)
      hypotheses.add(ids[b], beam_scores[b], ids[b].size() - prompt_len, stopped_by);
  }
  std::vector<BeamHypotheses::Hypothesis> sorted = hypotheses.beams();
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.score < b.score; });
  std::vector<BeamHypotheses::Hypothesis> best;
  for (int j = 0; j < config.num_return_sequences && !sorted.empty(); ++j) {
    best.push_back(std::move(sorted.back()));
    sorted.pop_back();
  }
  size_t longest = 0;
  for (const auto& h : best) longest = std::max(longest, h.ids.size());
  const size_t padded_length = std::min(longest + 1, plan.max_length);
  for (auto& h : best) {
    GeneratedSequence out;
    out.tokens.assign(h.ids.begin() + static_cast<std::ptrdiff_t>(prompt_len), h.ids.end());
    // finalize writes eos_token_id[0] after every hypothesis shorter than the
    // padded batch (the eos a hypothesis ended with is not in its ids).
    if (h.ids.size() < padded_length && !plan.eos.empty() && h.reason != FinishReason::cancelled)
      out.tokens.push_back(plan.eos[0]);
    out.finish_reason = h.reason;
    out.score = static_cast<float>(h.score);  // sequences_scores is a float32 tensor
    result.sequences.push_back(std::move(out));
  }
  if (request.on_token && !result.sequences.empty())
    for (int32_t token : result.sequences[0].tokens)
      if (!request.on_token(token)) break;
  return result;
}

}  // namespace mmfuse
