// Zero-shot classification with a text-image model (CLIP, Chinese-CLIP): labels become prompts through a
// template, and the image's label distribution is
// softmax(exp(logit_scale) * cos(image, prompt)).
#pragma once

#include <string>
#include <vector>

#include "models/dual_encoder.h"

namespace mmfuse {

struct ZeroShotScore {
  std::string label;
  float score = 0.0f;  // probability; scores over all labels sum to 1
};

// Replaces every "{}" in `templ` with `label` (a template without "{}" is an error).
std::string apply_template(const std::string& templ, const std::string& label);

// Label probabilities from already projected features (not yet normalised):
// image [dim], texts [labels, dim]. Returned in label order.
std::vector<float> zero_shot_probabilities(const float* image_features, const float* text_features,
                                           size_t labels, size_t dim, float logit_scale);

// Scores sorted by probability, highest first (ties keep label order).
std::vector<ZeroShotScore> zero_shot_classify(const DualEncoder& model, const Image& image,
                                              const std::vector<std::string>& labels,
                                              const std::string& templ);

}  // namespace mmfuse
