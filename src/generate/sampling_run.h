// One greedy or sampling request without the model: for each of its
// sequences, turn the next-token logits into a token (processors, warpers,
// argmax or a draw), append it and apply the stops (eos, max_length, the
// model's max_positions, stop strings), report sequence 0's tokens to
// on_token. generate() and the BatchScheduler both drive it, so a request
// gets the same tokens whichever runs it.
//
// Not thread-safe: one driver at a time (the request's own thread or the
// scheduler's worker).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "generate/generation_plan.h"
#include "generate/logits_processors.h"
#include "generate/stop_strings.h"

namespace mmfuse {

class SamplingRun {
 public:
  // The request must outlive the run. Validates and plans it (bad_input).
  explicit SamplingRun(const GenerationRequest& request);

  const GenerationPlan& plan() const { return plan_; }
  // num_return_sequences copies when sampling, else 1.
  size_t sequence_count() const { return sequences_.size(); }
  bool finished(size_t seq) const { return sequences_[seq].finished; }
  bool all_finished() const;
  // The token to feed to sequence `seq` next (its last chosen token).
  int32_t last_token(size_t seq) const { return sequences_[seq].ids.back(); }

  // Chooses sequence `seq`'s next token from its logits ([vocab], changed in
  // place). Call for every live sequence in index order each step: the
  // sampling draws come from one generator in that order.
  void choose(size_t seq, float* logits, size_t vocab);
  // Ends every live sequence with finish_reason cancelled.
  void cancel();
  // True when the caller's cancel flag is set.
  bool cancel_requested() const;

  GenerationResult result() const;

 private:
  struct Sequence {
    std::vector<int32_t> ids;  // input_ids + new tokens, what the processors see
    size_t new_tokens = 0;
    double score = 0.0;
    bool finished = false;
    FinishReason reason = FinishReason::length;
  };
  void finish(Sequence& s, FinishReason reason);

  const GenerationRequest& request_;
  GenerationPlan plan_;
  LogitsProcessorList processors_;
  StopStringMatcher stops_;
  std::mt19937_64 rng_;
  std::vector<Sequence> sequences_;
};

// The draw sampling makes: an index with probability softmax(scores), from
// one 53-bit uniform of `rng` (our own stream; it does not reproduce
// torch.multinomial's).
size_t sample_index(const float* scores, size_t n, std::mt19937_64& rng);
// First index of the largest score (torch.argmax's tie rule).
size_t argmax_index(const float* scores, size_t n);
// Seed for a request: config.seed, or a fresh random one.
uint64_t generation_seed(const GenerationConfig& config);

}  // namespace mmfuse
