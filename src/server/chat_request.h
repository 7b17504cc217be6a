// The bodies of POST /v1/chat/completions and POST /v1/completions as OpenAI
// defines them (plus the sampling extensions llama.cpp and vLLM accept:
// top_k, min_p, repetition_penalty, min_tokens), checked field by field so a
// bad value is a 400 that names the field, and turned into a GenerationConfig
// over the model folder's generation_config.json.
// Pure functions: no model, no HTTP; the routes (routes_chat.cpp) call them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "io/generation_config.h"
#include "text/generative_tokenizer.h"

namespace mmfuse {

namespace server {

// The sampling fields of both routes; unset optionals keep the folder's defaults.
struct SamplingRequest {
  std::optional<int> max_tokens;  // max_completion_tokens wins over max_tokens
  std::optional<int> min_tokens;
  std::optional<float> temperature, top_p, min_p, repetition_penalty;
  std::optional<int> top_k;  // 0 or -1: off
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;  // the answer ends before the first one, which is not returned
  size_t n = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage: a last chunk with usage
};

struct ChatRequest {
  std::string model;  // "" = the first generative model
  // The messages as sent, checked: role system|user|assistant, content a
  // string or a list of text / image_url parts.
  nlohmann::json messages;
  std::vector<std::string> image_urls;  // of the image_url parts, in order
  SamplingRequest sampling;
};

struct CompletionRequest {
  std::string model;
  std::string prompt;  // given to the processor as is (no chat template)
  SamplingRequest sampling;
};

// Limits the parsers enforce (from the server's LimitsConfig).
struct RequestLimits {
  size_t max_choices = 8;
  size_t max_images = 8;
};

// Throw Error(bad_input) naming the field for a malformed value and
// Error(unsupported) for an OpenAI feature mmfuse does not have (tools,
// logprobs, non-zero presence/frequency penalties).
ChatRequest parse_chat_request(const nlohmann::json& body, const RequestLimits& limits);
CompletionRequest parse_completion_request(const nlohmann::json& body, const RequestLimits& limits);
SamplingRequest parse_sampling(const nlohmann::json& body, const RequestLimits& limits);

// "llava-1.5+medical" -> {"llava-1.5", "medical"}; no "+": adapter "".
struct ModelRef {
  std::string base, adapter;
};
ModelRef split_model_id(const std::string& id);

// The config of one choice: the folder's defaults, then the request. Sampling
// is on when temperature > 0 is given (temperature 0 = greedy), else when the
// defaults sample or top_p / top_k / min_p is given. max_tokens absent: the
// defaults' max_new_tokens, else what is left of the context. Choice i of a
// seeded request samples with seed + i (choices differ, runs repeat).
// A prompt of `prompt_positions` plus the new tokens beyond `max_positions`
// is bad_input naming max_tokens.
GenerationConfig generation_config_for(const SamplingRequest& request,
                                       const GenerationConfig& defaults, size_t prompt_positions,
                                       size_t max_positions, size_t choice_index = 0);

}  // namespace server
}  // namespace mmfuse
