// transformers' `generate` for any LanguageModel: greedy, sampling and beam
// search with the same logits processors in the same order and the same tie
// rules as transformers 4.44 (see docs/generation.md).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "io/generation_config.h"
#include "models/language_model.h"
#include "text/generative_tokenizer.h"

namespace mmfuse {

enum class FinishReason { stop /* eos or a stop string */, length, cancelled };
const char* to_string(FinishReason reason);

struct GeneratedSequence {
  std::vector<int32_t> tokens;  // the new tokens only (eos included when generated)
  FinishReason finish_reason = FinishReason::length;
  double score = 0.0;  // beam search: sequences_score; otherwise the sum of chosen log-probs
};

struct GenerationResult {
  std::vector<GeneratedSequence> sequences;  // num_return_sequences of them, best first
  size_t prompt_positions = 0;               // positions the model saw for the prompt
};

struct GenerationRequest {
  const LanguageModel* model = nullptr;
  PromptInput prompt;
  GenerationConfig config;
  const GenerativeTokenizer* tokenizer = nullptr;  // needed for stop_strings
  const LoraAdapter* adapter = nullptr;            // unmerged LoRA for this request, or null
  // Called with each new token of sequence 0 as soon as it is chosen (greedy
  // and sampling; beam search reports its result at the end). Return false
  // to stop (finish_reason cancelled).
  std::function<bool(int32_t token)> on_token;
  const std::atomic<bool>* cancel = nullptr;  // checked between steps
};

GenerationResult generate(const GenerationRequest& request);

}  // namespace mmfuse
