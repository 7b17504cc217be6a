// Surface-defect anomaly detection fitted on photos of good parts only, with
// no pretrained weights: PatchCore's recipe (a memory bank of patch
// descriptors of good photos, thinned by greedy coreset selection; a patch's
// anomaly is the distance to its nearest neighbour in the bank; a photo's
// score is the mean of the top few cells of the Gaussian-smoothed anomaly map,
// less the map's median) over the weight-free texture descriptors of
// vision/texture_features.h.
// The alarm threshold comes from the good photos alone: k-fold, each held-out
// photo is scored by a bank fitted on the other folds, and the threshold is
// the (1 - false_alarm_rate) quantile of those scores.
// Saved as a model folder: config.json (model_type "image_patchcore",
// format_version, settings, threshold, a manifest of the files with their
// SHA-256) + model.safetensors (bank, feature mean and scale).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/thread_pool.h"
#include "detect/backbone_features.h"
#include "vision/image.h"
#include "vision/texture_features.h"

namespace mmfuse {

struct ImageAnomalyConfig {
  TextureFeatureConfig features;
  int bank_size = 8192;            // patches kept by the greedy coreset
  int coreset_candidates = 32768;  // random patches the coreset is chosen from
  float smooth = 0.5f;            // Gaussian sigma of the anomaly map, in grid cells
  // Score = mean of the top_k cells of the map; the map is first shifted by
  // its own median (subtract_median) so a photo that is rough all over (good
  // tiles carry scratches and streaks everywhere) does not read as a defect.
  int top_k = 3;
  bool subtract_median = true;
  // Add a photo-level term: log squared distance from the photo's texture
  // statistics to the nearest good photo's. The terms are put in units of
  // their spread over held-out good photos and summed (map cells included).
  // Off by default since format 5 (it lowered the sum with the position term).
  bool photo_statistics = false;
  // A third term of the same kind over the structure-tensor coherence
  // percentiles (PatchGrid::structure): how streaky the photo is.
  bool structure_statistics = true;
  // The patch k-NN term above (the memory bank). Off by default since format
  // 5: the position term below measured better, and adding the k-NN term to
  // it lowered the dev-half AUROC (docs/image_anomaly.md).
  bool patch_knn = false;
  // PaDiM's per-position Gaussian over the photo-aligned grid
  // (PatchGrid::aligned, features.position_grid cells a side): per cell a mean
  // and a covariance pooled over the (2 n + 1)^2 neighbouring cells
  // (position_neighbourhood n), shrunk towards a scaled identity by
  // position_shrinkage (few good photos); the cell's anomaly is its
  // Mahalanobis distance, the term the top_k cells less the median.
  bool position_gaussian = true;
  int position_neighbourhood = 1;
  float position_shrinkage = 0.3f;
  double false_alarm_rate = 0.05;  // of good photos, sets the threshold
  int folds = 5;
  uint64_t seed = 0;

  // The patch memory bank instead of the position term (format 4's recipe):
  // for backbone patches, parts of photos, and plants with a handful of good
  // photos, where a per-cell covariance has too little to go on.
  void use_patch_bank() {
    patch_knn = true;
    position_gaussian = false;
    features.position_grid = 0;  // the photo-aligned grid is not computed
  }
};

// Per-cell anomaly (distance to the nearest good patch, in standardised
// feature units, smoothed, less the map's median when subtract_median; with
// photo_statistics, in held-out-good spread units plus the photo term) on the
// feature grid, and the photo's score (the mean of its top_k cells).
struct AnomalyMap {
  int rows = 0, cols = 0, stride = 0;
  std::vector<float> cells;  // rows * cols, after smoothing
  double score = 0.0;
};

struct ImageCalibration {
  int folds = 0;
  std::vector<double> held_out_scores;  // one per good photo
};

// One standardised row per good photo of a photo-level statistic vector (the
// photo and structure terms: distance to the nearest good photo).
struct PhotoBank {
  std::vector<float> mean, inv_scale, bank;
};

// The position term's model: descriptors standardised over all aligned cells
// of the good photos, then per cell a mean and an inverse covariance.
struct PositionGaussian {
  int grid = 0, dim = 0;
  std::vector<float> mean, inv_scale;  // dim (TextureFeatureConfig::aligned_dim)
  std::vector<float> centre;           // grid^2 * dim, standardised units
  std::vector<float> precision;        // grid^2 * dim (dim + 1) / 2: upper triangles
};

class ImageAnomalyModel {
 public:
  // 2: settings gained top_k and subtract_median (a version-1 folder is read
  // with top_k 1 and no median shift, the scoring it was fitted with).
  // 3: photo-level statistics term (version 2 is read without it).
  // 4: structure (coherence) statistics term (version 3 is read without it).
  // 5: per-position Gaussian term and the patch_knn switch (versions 1-4 are
  // read with the k-NN term and without the position term).
  static constexpr int kFormatVersion = 5;

  // Fits the bank on all photos and sets the threshold from k-fold held-out
  // scores. Throws Error(bad_input) for fewer than 2 photos or ones whose
  // descriptors differ in size. `pool` runs the coreset and the folds.
  static ImageAnomalyModel fit(ThreadPool& pool, const std::vector<PatchGrid>& good,
                               const ImageAnomalyConfig& config, ImageCalibration* calibration = nullptr);

  const ImageAnomalyConfig& config() const { return config_; }
  double threshold() const { return threshold_; }
  void set_threshold(double t) { threshold_ = t; }
  size_t bank_rows() const { return bank_.size() / static_cast<size_t>(dim_); }
  int dim() const { return dim_; }
  size_t training_images() const { return training_images_; }

  // Descriptors from a backbone instead of the texture descriptors (set after
  // fit() on grids from that source; saved, and reopened by load()).
  void set_feature_source(std::shared_ptr<const PatchFeatureSource> source) { source_ = std::move(source); }
  const std::shared_ptr<const PatchFeatureSource>& feature_source() const { return source_; }

  // Thread-safe and single-threaded (call it from many threads at once).
  AnomalyMap score(const PatchGrid& grid) const;
  AnomalyMap score_image(const Image& image) const;

  void save(const std::filesystem::path& dir) const;
  // Throws Error(bad_input) naming the file for another model type, another
  // format version, a file that does not match its manifest digest, or
  // shapes that do not agree.
  static ImageAnomalyModel load(const std::filesystem::path& dir);

 private:
  friend struct ImageAnomalyBuilder;
  ImageAnomalyConfig config_;
  int dim_ = 0;
  std::vector<float> mean_, inv_scale_;  // feature standardisation
  std::vector<float> bank_;              // bank_rows * dim, standardised
  std::vector<float> bank_norms_;        // squared norms of the bank rows
  PhotoBank stats_;      // photo statistics (photo_statistics)
  PhotoBank structure_;  // structure statistics (structure_statistics)
  PositionGaussian position_;  // position term (position_gaussian)
  // Centre and spread of the terms over held-out good photos.
  double patch_centre_ = 0.0, patch_spread_ = 1.0, photo_centre_ = 0.0, photo_spread_ = 1.0;
  double structure_centre_ = 0.0, structure_spread_ = 1.0;
  double position_centre_ = 0.0, position_spread_ = 1.0;
  // Terms in spread units are summed when more than the k-NN term is on.
  bool has_photo_terms() const {
    return config_.photo_statistics || config_.structure_statistics || config_.position_gaussian;
  }
  // The map before the terms are combined, and the photo-level terms alone.
  AnomalyMap patch_map(const PatchGrid& grid) const;
  double photo_term(const PatchGrid& grid) const;
  double structure_term(const PatchGrid& grid) const;
  // The position term's map on the photo-aligned grid (median shifted when
  // subtract_median) and its score.
  AnomalyMap position_map(const PatchGrid& grid) const;
  AnomalyMap combine(const PatchGrid& grid, const AnomalyMap* patch, const AnomalyMap* position, double photo,
                     double structure) const;
  double threshold_ = 0.0;
  size_t training_images_ = 0;
  std::shared_ptr<const PatchFeatureSource> source_;  // null: texture descriptors
};

// Decodes every file and computes its descriptors, one photo per core of
// `pool`; the first bad file's error is thrown (naming the file).
std::vector<PatchGrid> texture_features_of_files(ThreadPool& pool,
                                                 const std::vector<std::filesystem::path>& files,
                                                 const TextureFeatureConfig& config);

// The anomaly map as an 8-bit grey PNG at the photo's size (bilinear), 128 at
// the threshold, 255 at twice the threshold or more.
std::string heatmap_png(const AnomalyMap& map, int width, int height, double threshold);

nlohmann::json image_anomaly_config_to_json(const ImageAnomalyConfig& c);
ImageAnomalyConfig image_anomaly_config_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace mmfuse
