// A model that embeds texts and images into one shared space (CLIP,
// Chinese-CLIP). Zero-shot classification, `mmfuse embed` and the retrieval
// index work through this interface, so they take any such architecture.
// Open one through the registry (models/registry.h: open_dual_encoder).
//
// Thread-safety: all calls are const and may come from any number of threads
// at once; they compute on pool(), which runs one caller's loop at a time.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "text/token_batch.h"
#include "vision/image.h"

namespace mmfuse {

struct TowerTrace;

class DualEncoder {
 public:
  virtual ~DualEncoder() = default;
  virtual const std::string& name() const = 0;
  virtual int dim() const = 0;
  // exp(logit_scale): the temperature of zero-shot classification logits.
  virtual float logit_scale() const = 0;
  // The cores this model computes with (its own, or shared with other models).
  virtual ThreadPool& pool() const = 0;
  virtual size_t weight_bytes() const = 0;
  // Side of the square pixel_values the image tower takes.
  virtual int image_size() const = 0;

  // Projected features before L2 normalisation, [count, dim()].
  virtual std::vector<float> text_features(const std::vector<std::string>& texts) const = 0;
  virtual std::vector<float> image_features(const std::vector<Image>& images) const = 0;
  // The same from already tokenised texts / pre-processed pixel_values
  // [batch, 3, image_size(), image_size()]; a trace records intermediate outputs.
  virtual std::vector<float> text_features(const TokenBatch& tokens,
                                           TowerTrace* trace = nullptr) const = 0;
  virtual std::vector<float> image_features(const float* pixel_values, size_t batch,
                                            TowerTrace* trace = nullptr) const = 0;
  // The token rows text_features(texts) feeds the text tower; `pad` pads
  // every row to the context length (as the HF processors do).
  virtual TokenBatch tokenize(const std::vector<std::string>& texts, bool pad) const = 0;
  // Tokens the text tower sees for `text`: special tokens included, cut at the
  // context length (what OpenAI-style `usage` counts).
  virtual size_t count_text_tokens(const std::string& text) const = 0;
  // The prompt template zero-shot classification uses when none is given.
  virtual std::string default_prompt_template() const { return "a photo of a {}."; }
};

}  // namespace mmfuse
