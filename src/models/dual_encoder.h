// A model that embeds texts and images into one shared space (CLIP,
// Chinese-CLIP). Zero-shot classification, `mmfuse embed` and the retrieval
// index work through this interface, so they take any such architecture.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "vision/image.h"

namespace mmfuse {

class DualEncoder {
 public:
  virtual ~DualEncoder() = default;
  virtual const std::string& name() const = 0;
  virtual int dim() const = 0;
  // exp(logit_scale): the temperature of zero-shot classification logits.
  virtual float logit_scale() const = 0;
  // Projected features before L2 normalisation, [count, dim()].
  virtual std::vector<float> text_features(const std::vector<std::string>& texts) const = 0;
  virtual std::vector<float> image_features(const std::vector<Image>& images) const = 0;
  // Tokens the text tower sees for `text`: special tokens included, cut at the
  // context length (what OpenAI-style `usage` counts).
  virtual size_t count_text_tokens(const std::string& text) const = 0;
  // The prompt template zero-shot classification uses when none is given.
  virtual std::string default_prompt_template() const { return "a photo of a {}."; }
};

// Opens a model folder whose config.json model_type is "clip" or
// "chinese_clip". Other types are an `unsupported` error naming the file (a
// text-only "bert" folder: "cannot embed images").
std::unique_ptr<DualEncoder> load_dual_encoder(const std::filesystem::path& dir);

}  // namespace mmfuse
