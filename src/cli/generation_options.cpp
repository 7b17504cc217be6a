#include "cli/generation_options.h"

#include "cli/common.h"

namespace mmfuse::cli {

void add_generation_flags(CLI::App* cmd, GenerationFlags* f) {
  cmd->add_option("--max-new-tokens", f->max_new_tokens, "Most new tokens (default: the folder's)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--num-beams", f->num_beams, "Beam search with K beams (1 = greedy/sampling)")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--num-return-sequences", f->num_return_sequences,
                  "Sequences returned (<= --num-beams unless sampling)")
      ->check(CLI::Range(1, 64));
  cmd->add_flag("--do-sample", f->do_sample, "Sample instead of greedy / beam search");
  cmd->add_option("--temperature", f->temperature, "Sampling temperature");
  cmd->add_option("--top-k", f->top_k, "Keep the k most likely tokens (0 = off)");
  cmd->add_option("--top-p", f->top_p, "Nucleus sampling mass (1 = off)");
  cmd->add_option("--min-p", f->min_p, "Drop tokens below min_p x the top probability");
  cmd->add_option("--repetition-penalty", f->repetition_penalty, "CTRL repetition penalty (1 = off)");
  cmd->add_option("--no-repeat-ngram-size", f->no_repeat_ngram_size, "Ban repeated n-grams");
  cmd->add_option("--length-penalty", f->length_penalty, "Beam search length penalty");
  cmd->add_option("--seed", f->seed, "Sampling seed (default: random)");
  cmd->add_option("--stop", f->stop, "Stop when the text ends with this (repeatable)");
}

GenerationConfig generation_config_from(const GenerationConfig& defaults,
                                        const GenerationFlags& f) {
  GenerationConfig c = defaults;
  if (f.max_new_tokens) c.max_new_tokens = *f.max_new_tokens;
  if (f.num_beams) c.num_beams = *f.num_beams;
  if (f.num_return_sequences) c.num_return_sequences = *f.num_return_sequences;
  if (f.do_sample) c.do_sample = true;
  if (f.temperature) c.temperature = *f.temperature;
  if (f.top_k) c.top_k = *f.top_k;
  if (f.top_p) c.top_p = *f.top_p;
  if (f.min_p) c.min_p = *f.min_p;
  if (f.repetition_penalty) c.repetition_penalty = *f.repetition_penalty;
  if (f.no_repeat_ngram_size) c.no_repeat_ngram_size = *f.no_repeat_ngram_size;
  if (f.length_penalty) c.length_penalty = *f.length_penalty;
  if (f.seed) c.seed = *f.seed;
  for (const auto& s : f.stop) c.stop_strings.push_back(s);
  validate(c);
  return c;
}

}  // namespace mmfuse::cli
