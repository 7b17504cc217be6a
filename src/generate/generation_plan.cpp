#include "generate/generation_plan.h"

#include <string>

#include "mmfuse/error.h"

namespace mmfuse {

namespace {

// Decoder-only prompts without context_ids: the ids of their id segments
// (a prompt of embeddings only keeps none, as BLIP-2 does).
std::vector<int32_t> context_of(const PromptInput& prompt) {
  if (!prompt.context_ids.empty()) return prompt.context_ids;
  std::vector<int32_t> ids;
  for (const auto& segment : prompt.segments) {
    if (segment.rows > 0) return prompt.context_ids;
    ids.insert(ids.end(), segment.ids.begin(), segment.ids.end());
  }
  return ids;
}

}  // namespace

GenerationPlan plan_generation(const GenerationRequest& request) {
  MMFUSE_CHECK(request.model != nullptr, bad_input, "generation: no model given");
  const LanguageModel& model = *request.model;
  const GenerationConfig& config = request.config;
  validate(config);
  MMFUSE_CHECK(config.stop_strings.empty() || request.tokenizer != nullptr, bad_input,
               "generation: stop_strings need the model's tokenizer");
  MMFUSE_CHECK(request.prompt.length() > 0, bad_input, "generation: the prompt is empty");
  for (const auto& segment : request.prompt.segments) {
    MMFUSE_CHECK(segment.rows == 0 || segment.embeddings.size() ==
                                          segment.rows * static_cast<size_t>(model.hidden_size()),
                 bad_input, "generation: a prompt segment's embeddings are not rows x hidden_size");
    for (int32_t id : segment.ids)
      MMFUSE_CHECK(
          id >= 0 && id < model.vocab_size(), bad_input,
          "generation: prompt token id " + std::to_string(id) + " is outside the vocabulary");
  }

  GenerationPlan plan;
  plan.encoder_decoder = model.decoder_start_token() >= 0;
  plan.beam_search = config.num_beams > 1;
  plan.eos = config.eos_token_ids;
  // _prepare_special_tokens: no pad id -> the first eos id.
  plan.pad = config.pad_token_id >= 0 ? config.pad_token_id : (plan.eos.empty() ? -1 : plan.eos[0]);

  const size_t max_positions = model.max_positions();
  if (plan.encoder_decoder) {
    // The decoder starts from its start token; the encoder input only has to fit.
    plan.input_ids = {model.decoder_start_token()};
    plan.prompt_positions = 1;
    MMFUSE_CHECK(request.prompt.length() <= max_positions, bad_input,
                 "generation: the prompt has " + std::to_string(request.prompt.length()) +
                     " positions, more than the model's " + std::to_string(max_positions));
  } else {
    plan.input_ids = context_of(request.prompt);
    plan.prompt_positions = request.prompt.length();
  }
  // The prompt plus the new tokens must fit in max_positions: a prompt that
  // leaves no room for one new token is refused.
  MMFUSE_CHECK(plan.prompt_positions < max_positions, bad_input,
               "generation: the prompt has " + std::to_string(plan.prompt_positions) +
                   " positions, which leaves no room in the model's max_positions " +
                   std::to_string(max_positions));
  plan.position_room = max_positions - plan.prompt_positions;

  // _prepare_generated_length / _validate_generated_length.
  const size_t input_length = plan.input_ids.size();
  plan.max_length = config.max_new_tokens
                        ? static_cast<size_t>(*config.max_new_tokens) + input_length
                        : static_cast<size_t>(config.max_length);
  MMFUSE_CHECK(input_length < plan.max_length, bad_input,
               "generation: the input has " + std::to_string(input_length) +
                   " ids but max_length is " + std::to_string(plan.max_length) +
                   " (set max_new_tokens)");
  plan.max_new_tokens = plan.max_length - input_length;
  return plan;
}

}  // namespace mmfuse
