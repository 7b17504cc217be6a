// The decoding flags `generate` and `chat` share (--max-new-tokens, --num-beams,
// --do-sample, --temperature, ...), applied over a folder's generation_config.json.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "io/generation_config.h"
#include "mmfuse/generator.h"

namespace mmfuse::cli {

// The library's GenerationSettings, plus what only the CLI prints (several
// returned sequences).
struct GenerationFlags {
  GenerationSettings settings;
  std::optional<int> num_return_sequences;
  bool do_sample = false;
};

void add_generation_flags(CLI::App* cmd, GenerationFlags* flags);

// The folder's defaults with the flags given on top, validated (errors name the flag).
GenerationConfig generation_config_from(const GenerationConfig& defaults,
                                        const GenerationFlags& flags);

}  // namespace mmfuse::cli
