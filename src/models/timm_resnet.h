// timm's ResNet family (resnet18/34/50/101/152, wide_resnet50_2/101_2) as a
// feature extractor: the stem (7x7 conv, BN, ReLU, 3x3 max-pool) and the four
// stages of basic or bottleneck blocks, read from a Hugging Face hub-style
// timm folder (config.json with "architecture", optional "model_args" and
// "pretrained_cfg"; model.safetensors with timm's state_dict names). Batch
// norms are folded into their convolutions at load (inference statistics),
// so a stage's output matches timm's eval() forward. Anomalib's PaDiM and
// PatchCore read the outputs of layer1..layer3 as patch features.
#pragma once

#include <array>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "vision/image.h"

namespace mmfuse {

struct TimmResNetConfig {
  std::string architecture;           // timm's name, e.g. "wide_resnet50_2"
  bool bottleneck = false;            // Bottleneck blocks (resnet50+) or BasicBlock
  std::array<int, 4> layers{};        // blocks per stage
  std::array<float, 3> mean{}, std{}; // pretrained_cfg input normalisation (RGB in [0, 1])
};

// Reads timm's config.json; other architectures, or model_args this
// implementation does not reproduce (deep stems, average-pool downsampling,
// grouped convolutions, attention), are ErrorKind::unsupported naming `where`.
TimmResNetConfig timm_resnet_config_from_json(const nlohmann::json& j, const std::string& where);

// True for config.json objects written by timm for a ResNet this file runs.
bool is_timm_resnet_config(const nlohmann::json& j);

// One stage's output, height x width x channels (HWC).
struct FeatureMap {
  int height = 0, width = 0, channels = 0;
  std::vector<float> values;
};

class TimmResNet {
 public:
  // Reads the config and the weights (batch norms folded). Throws not_found
  // for a missing folder, bad_input for weights that do not fit the config.
  static std::unique_ptr<TimmResNet> open(const std::filesystem::path& dir);
  ~TimmResNet();

  const TimmResNetConfig& config() const;
  // Channels of stage s (0..3); its downsampling factor is 4 << s.
  int stage_channels(int stage) const;

  // `input`: height x width x 3 (HWC), already normalised; any size from
  // 32 x 32 (the convolutions are planned once per size and kept, a few
  // sizes at a time). Returns the outputs of stages 0..last_stage.
  // Thread-safe; runs on the calling thread.
  std::vector<FeatureMap> forward(const float* input, int height, int width, int last_stage) const;

  // An RGB photo at its own size, scaled to [0, 1] and normalised with the
  // config's mean and std (HWC).
  std::vector<float> normalise(const Image& image) const;

 private:
  TimmResNet();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mmfuse
