// generate(): greedy and sampling step all of a request's sequences through
// one batched decode per step (SamplingRun chooses the tokens); beam search
// runs in beam_search.cpp.
#include "generate/generator.h"

#include "generate/beam_search.h"
#include "generate/generation_plan.h"
#include "generate/sampling_run.h"

namespace mmfuse {

const char* to_string(FinishReason reason) {
  switch (reason) {
    case FinishReason::stop: return "stop";
    case FinishReason::length: return "length";
    case FinishReason::cancelled: return "cancelled";
  }
  return "length";
}

GenerationResult generate(const GenerationRequest& request) {
  if (request.config.num_beams > 1) {
    const GenerationPlan plan = plan_generation(request);
    return beam_search(request, plan);
  }
  SamplingRun run(request);
  const LanguageModel& model = *request.model;
  const size_t vocab = static_cast<size_t>(model.vocab_size());
  if (run.cancel_requested()) {
    run.cancel();
    return run.result();
  }

  // One prefill; the other sequences (num_return_sequences when sampling) start as its copies.
  const size_t count = run.sequence_count();
  std::vector<float> logits(count * vocab);
  std::vector<std::unique_ptr<DecoderState>> states(count);
  states[0] = model.prefill(request.prompt, logits.data(), request.adapter);
  for (size_t i = 1; i < count; ++i) {
    states[i] = states[0]->clone();
    std::copy_n(logits.data(), vocab, logits.data() + i * vocab);
  }

  std::vector<size_t> live(count);
  for (size_t i = 0; i < count; ++i) live[i] = i;  // row r of `logits` belongs to sequence live[r]
  std::vector<DecoderState*> batch;
  std::vector<int32_t> tokens;
  for (;;) {
    for (size_t r = 0; r < live.size(); ++r)
      if (!run.finished(live[r])) run.choose(live[r], logits.data() + r * vocab, vocab);
    if (!run.all_finished() && run.cancel_requested()) run.cancel();
    if (run.all_finished()) break;

    std::vector<size_t> still;
    batch.clear();
    tokens.clear();
    for (size_t seq : live) {
      if (run.finished(seq)) {
        states[seq].reset();  // free its cache now
        continue;
      }
      still.push_back(seq);
      batch.push_back(states[seq].get());
      tokens.push_back(run.last_token(seq));
    }
    live = std::move(still);
    model.decode(batch.data(), tokens.data(), batch.size(), logits.data());
  }
  return run.result();
}

}  // namespace mmfuse
