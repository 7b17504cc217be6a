// What generate() settles from a request before the first model call, as
// transformers' generate() does before its decoding loop: the ids the
// processors see, max_length (max_new_tokens folded in), the eos and pad ids,
// and the room the model's max_positions leaves. Shared by generate() and the
// batch scheduler so both decide the same way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "generate/generator.h"

namespace mmfuse {

struct GenerationPlan {
  // transformers' input_ids before the first new token: the context ids
  // (decoder-only) or [decoder_start_token] (encoder-decoder).
  std::vector<int32_t> input_ids;
  size_t prompt_positions =
      0;  // decoder positions the prompt fills (1 for encoder-decoder: the start token)
  size_t max_length = 0;      // input_ids + new tokens, as HF's max_length
  size_t max_new_tokens = 0;  // max_length - input_ids
  // New tokens the model's max_positions leaves room for (<= max_new_tokens
  // or not: when it is smaller, generation ends with finish_reason length).
  size_t position_room = 0;
  std::vector<int32_t> eos;
  int32_t pad = -1;
  bool encoder_decoder = false;
  bool beam_search = false;
};

// Validates the request (model set, config valid, prompt fits, stop strings
// with a tokenizer) and resolves it; bad_input names what is wrong.
GenerationPlan plan_generation(const GenerationRequest& request);

}  // namespace mmfuse
