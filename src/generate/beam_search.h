// Beam search as transformers 4.44's `_beam_search` with `BeamSearchScorer`
// and `BeamHypotheses` (one prompt, no beam groups): log_softmax, the
// processors (and the warpers for beam sampling), the running beam scores
// added, the best 2 * num_beams (more with several eos ids) of
// num_beams * vocab candidates, eos candidates ranked below num_beams
// dropped, the others stored as hypotheses scored by
// sum_logprobs / generated_len ** length_penalty, and early_stopping's three
// `is_done` rules.
#pragma once

#include <cstdint>
#include <vector>

#include "generate/generation_plan.h"

namespace mmfuse {

// The n-best list of finished hypotheses (BeamHypotheses).
class BeamHypotheses {
 public:
  struct Hypothesis {
    double score = 0.0;
    std::vector<int32_t> ids;  // input_ids of the hypothesis (prompt included, eos not)
    FinishReason reason = FinishReason::stop;  // stop: it ended with eos
  };

  BeamHypotheses(size_t num_beams, double length_penalty, EarlyStopping early_stopping,
                 size_t max_length);
  size_t size() const { return beams_.size(); }
  const std::vector<Hypothesis>& beams() const { return beams_; }
  double worst_score() const { return worst_score_; }

  // add(hyp, sum_logprobs, generated_len).
  void add(std::vector<int32_t> ids, double sum_logprobs, size_t generated_len,
           FinishReason reason);
  // is_done(best_sum_logprobs, cur_len, decoder_prompt_len).
  bool is_done(double best_sum_logprobs, size_t cur_len, size_t decoder_prompt_len) const;

 private:
  size_t num_beams_;
  double length_penalty_;
  EarlyStopping early_stopping_;
  size_t max_length_;
  std::vector<Hypothesis> beams_;  // in insertion order, as the Python list
  double worst_score_ = 1e9;
};

// Runs a request with num_beams > 1; the plan comes from plan_generation.
GenerationResult beam_search(const GenerationRequest& request, const GenerationPlan& plan);

}  // namespace mmfuse
