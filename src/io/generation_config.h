// transformers' GenerationConfig (read from a model folder's generation_config.json):
// defaults are the class defaults of transformers 4.44; a folder's
// generation_config.json overrides them, and a request overrides that.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace mmfuse {

enum class EarlyStopping { never, heuristic /* false */, always /* true */ };

struct GenerationConfig {
  // Length. max_new_tokens wins over max_length when both are set.
  std::optional<int> max_new_tokens;
  int max_length = 20;  // prompt + new tokens (context_ids length for the prompt)
  int min_new_tokens = 0;
  int min_length = 0;

  // Search.
  bool do_sample = false;
  int num_beams = 1;
  int num_return_sequences = 1;
  float length_penalty = 1.0f;
  EarlyStopping early_stopping = EarlyStopping::heuristic;

  // Logits processors and warpers (1 / 0 / 50 / 1.0 mean off as in HF).
  float temperature = 1.0f;
  int top_k = 50;
  float top_p = 1.0f;
  std::optional<float> min_p;
  float repetition_penalty = 1.0f;
  int no_repeat_ngram_size = 0;
  std::optional<uint64_t> seed;  // sampling; none = a random seed

  // Tokens and stops.
  std::vector<int32_t> eos_token_ids;  // any of them ends a sequence
  int32_t pad_token_id = -1;
  int32_t bos_token_id = -1;
  int32_t decoder_start_token_id = -1;
  std::vector<std::string> stop_strings;  // end when the decoded text ends with one
};

// Reads dir/generation_config.json over the class defaults (absent file:
// defaults). `where` names the file in errors; unknown keys are ignored, as HF
// keeps them as attributes, but known keys of the wrong type are bad_input.
GenerationConfig load_generation_config(const std::filesystem::path& dir);
// Applies the keys of a JSON object (generation_config.json field names) to config.
void apply_generation_json(GenerationConfig& config, const nlohmann::json& fields,
                           const std::string& where);
// Rejects values transformers rejects (num_beams < 1, temperature <= 0 when
// sampling, top_p outside (0, 1], num_return_sequences > num_beams without
// sampling, ...), naming the field.
void validate(const GenerationConfig& config);

}  // namespace mmfuse
