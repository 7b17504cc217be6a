// Patch descriptors from a pretrained backbone the user has (issue 17, item
// 3), for the same memory bank as the weight-free texture descriptors: a timm
// ResNet / WideResNet folder, read as Anomalib's PatchCore reads its default
// wide_resnet50_2 — the outputs of layer2 (stride 8) and layer3 (stride 16),
// each averaged over 3x3 neighbours (AvgPool2d(3, 1, 1)), layer3 upsampled
// bilinearly to layer2's grid and concatenated. Photos are not resized (as the
// texture path): one grid cell per 8 x 8 pixels of the photo.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/thread_pool.h"
#include "vision/image.h"
#include "vision/texture_features.h"

namespace mmfuse {

// Where an image anomaly model's patch descriptors come from when they are not
// the weight-free texture descriptors.
class PatchFeatureSource {
 public:
  virtual ~PatchFeatureSource() = default;
  // Thread-safe. Throws Error(bad_input) for a photo too small for the grid.
  virtual PatchGrid features(const Image& image) const = 0;
  virtual int dim() const = 0;
  virtual int stride() const = 0;  // photo pixels per grid cell
  // Recorded as the model's settings.features: kind "backbone", the folder,
  // its SHA-256 (config.json + weights), the layers.
  virtual nlohmann::json to_json() const = 0;
};

// Opens a timm ResNet folder (models/timm_resnet.h). Throws not_found for a
// missing folder, unsupported for another architecture.
std::shared_ptr<const PatchFeatureSource> open_backbone_features(const std::filesystem::path& dir);

// True for a settings.features object of kind "backbone".
bool is_backbone_features_json(const nlohmann::json& j);

// Reopens the backbone a saved model names (settings.features of kind
// "backbone"); a folder whose content no longer matches the recorded SHA-256
// is Error(bad_input) naming `where` (refit the model).
std::shared_ptr<const PatchFeatureSource> backbone_features_from_json(const nlohmann::json& j,
                                                                      const std::string& where);

// Decodes every file and computes its descriptors from `source`, one photo
// per core of `pool`; the first bad file's error is thrown naming the file.
std::vector<PatchGrid> patch_features_of_files(ThreadPool& pool,
                                               const std::vector<std::filesystem::path>& files,
                                               const PatchFeatureSource& source);

// SHA-256 over a model folder's config.json and weight files (sorted names).
std::string model_folder_sha256(const std::filesystem::path& dir);

}  // namespace mmfuse
