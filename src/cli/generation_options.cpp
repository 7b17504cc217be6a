#include "cli/generation_options.h"

#include "cli/common.h"
#include "generate/generation_settings.h"

namespace mmfuse::cli {

void add_generation_flags(CLI::App* cmd, GenerationFlags* f) {
  GenerationSettings& s = f->settings;
  cmd->add_option("--max-new-tokens", s.max_new_tokens, "Most new tokens (default: the folder's)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--num-beams", s.num_beams, "Beam search with K beams (1 = greedy/sampling)")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--num-return-sequences", f->num_return_sequences,
                  "Sequences returned (<= --num-beams unless sampling)")
      ->check(CLI::Range(1, 64));
  cmd->add_flag("--do-sample", f->do_sample, "Sample instead of greedy / beam search");
  cmd->add_option("--temperature", s.temperature, "Sampling temperature");
  cmd->add_option("--top-k", s.top_k, "Keep the k most likely tokens (0 = off)");
  cmd->add_option("--top-p", s.top_p, "Nucleus sampling mass (1 = off)");
  cmd->add_option("--min-p", s.min_p, "Drop tokens below min_p x the top probability");
  cmd->add_option("--repetition-penalty", s.repetition_penalty, "CTRL repetition penalty (1 = off)");
  cmd->add_option("--no-repeat-ngram-size", s.no_repeat_ngram_size, "Ban repeated n-grams");
  cmd->add_option("--length-penalty", s.length_penalty, "Beam search length penalty");
  cmd->add_option("--seed", s.seed, "Sampling seed (default: random)");
  cmd->add_option("--stop", s.stop, "Stop when the text ends with this (repeatable)");
}

GenerationConfig generation_config_from(const GenerationConfig& defaults,
                                        const GenerationFlags& f) {
  GenerationSettings settings = f.settings;
  if (f.do_sample) settings.do_sample = true;
  GenerationConfig c = apply_settings(defaults, settings);
  if (f.num_return_sequences) {
    c.num_return_sequences = *f.num_return_sequences;
    validate(c);
  }
  return c;
}

}  // namespace mmfuse::cli
