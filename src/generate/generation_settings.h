// A request's decoding settings (the public GenerationSettings: library
// callers, and the CLI's --max-new-tokens, --num-beams, ... flags) applied
// over a model's generation defaults: one mapping for every front end.
#pragma once

#include "io/generation_config.h"
#include "mmfuse/generator.h"

namespace mmfuse {

// `defaults` with every setting that is given on top, validated (errors name
// the field, as transformers' GenerationConfig.validate does).
GenerationConfig apply_settings(GenerationConfig defaults, const GenerationSettings& settings);

}  // namespace mmfuse
