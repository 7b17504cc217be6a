#include "generate/generation_settings.h"

namespace mmfuse {

GenerationConfig apply_settings(GenerationConfig c, const GenerationSettings& s) {
  if (s.max_new_tokens) c.max_new_tokens = *s.max_new_tokens;
  if (s.num_beams) c.num_beams = *s.num_beams;
  if (s.do_sample) c.do_sample = *s.do_sample;
  if (s.temperature) c.temperature = *s.temperature;
  if (s.top_p) c.top_p = *s.top_p;
  if (s.min_p) c.min_p = *s.min_p;
  if (s.repetition_penalty) c.repetition_penalty = *s.repetition_penalty;
  if (s.length_penalty) c.length_penalty = *s.length_penalty;
  if (s.top_k) c.top_k = *s.top_k;
  if (s.no_repeat_ngram_size) c.no_repeat_ngram_size = *s.no_repeat_ngram_size;
  if (s.seed) c.seed = *s.seed;
  c.stop_strings.insert(c.stop_strings.end(), s.stop.begin(), s.stop.end());
  validate(c);
  return c;
}

}  // namespace mmfuse
