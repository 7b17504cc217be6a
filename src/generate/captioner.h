// Image captioning over any GenerativeModel that takes images (LLaVA, BLIP-2):
// one user message holding the image (and a text part when the model wants a
// prompt), rendered through the folder's chat template, then `generate` and a
// decode without special tokens — what transformers' image-to-text pipeline
// gives, with deterministic decoding (greedy or beam search, never sampling)
// so an index built twice holds the same captions.
//
// Thread-safety: a Captioner is immutable once built; caption() may be called
// from many threads at once (each call has its own decoder state).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "generate/generator.h"
#include "io/generation_config.h"
#include "models/generative_model.h"
#include "vision/image.h"

namespace mmfuse {

struct CaptionOptions {
  // The text asked with the image; none: default_caption_text(model). An
  // empty string asks with the image alone.
  std::optional<std::string> prompt;
  // transformers' image-to-text pipeline leaves both to generate's defaults
  // (max_length 20 counting the prompt, greedy); 30 new tokens fits one
  // sentence whatever the prompt's length.
  int max_new_tokens = 30;
  int num_beams = 1;
};

struct Caption {
  std::string text;   // special tokens skipped, surrounding white space trimmed
  size_t tokens = 0;  // new tokens generated (eos included when generated)
  FinishReason finish_reason = FinishReason::length;
};

// "" for models whose images are not placed by a token (BLIP-2 captions with no
// prompt), else "Describe this image in one sentence." (LLaVA answers a question).
std::string default_caption_text(const GenerativeModel& model);

class Captioner {
 public:
  // Renders the prompt once and checks the options. bad_input naming the model
  // when it does not take images; bad_input naming the field for a bad option.
  explicit Captioner(std::shared_ptr<const GenerativeModel> model, CaptionOptions options = {});

  Caption caption(const Image& image) const;

  const GenerativeModel& model() const { return *model_; }
  // The prompt text handed to the model's processor.
  const std::string& prompt() const { return prompt_; }
  const GenerationConfig& config() const { return config_; }

 private:
  std::shared_ptr<const GenerativeModel> model_;
  std::string prompt_;
  GenerationConfig config_;
};

}  // namespace mmfuse
