// The decoding flags `generate` and `chat` share (--max-new-tokens, --num-beams,
// --do-sample, --temperature, ...), applied over a folder's generation_config.json.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "io/generation_config.h"

namespace mmfuse::cli {

struct GenerationFlags {
  std::optional<int> max_new_tokens, num_beams, top_k, no_repeat_ngram_size, num_return_sequences;
  std::optional<float> temperature, top_p, min_p, repetition_penalty, length_penalty;
  std::optional<uint64_t> seed;
  bool do_sample = false;
  std::vector<std::string> stop;
};

void add_generation_flags(CLI::App* cmd, GenerationFlags* flags);

// The folder's defaults with the flags given on top, validated (errors name the flag).
GenerationConfig generation_config_from(const GenerationConfig& defaults,
                                        const GenerationFlags& flags);

}  // namespace mmfuse::cli
