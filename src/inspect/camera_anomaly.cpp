// The "anomaly" camera detector: a model of normal learned from the point's
// photos of good parts (detect/image_anomaly.h), fitted once at plant start
// and cached on disk like the sound models. A photo is a defect when its
// anomaly score reaches the model's threshold (set from held-out good photos);
// the camera's score is score / threshold, the defect's box the region of the
// heat-map above the threshold around its peak, and the heat-map is evidence.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "detect/image_anomaly.h"
#include "fusion/fusion.h"
#include "inspect/camera_detector.h"
#include "inspect/sources.h"
#include "io/atomic_file.h"
#include "io/digest.h"
#include "mmfuse/error.h"
#include "vision/image_files.h"

namespace mmfuse::inspect {

namespace fs = std::filesystem;

namespace {

constexpr const char* kKeyFile = "fit_key.txt";  // next to the model folder
constexpr const char* kModelDir = "model";

// Identifies a fit: the model format, the settings and every good photo's
// content (not its name or time: a copied folder reuses the model, an edited
// photo refits it).
std::string fit_key(const std::vector<fs::path>& files, const ImageAnomalyConfig& config,
                    const std::string& backbone) {
  std::string text = "image-anomaly format " + std::to_string(ImageAnomalyModel::kFormatVersion) +
                     "\n" + image_anomaly_config_to_json(config).dump() + "\n" + backbone + "\n";
  for (const fs::path& f : files) {
    const std::string bytes = read_file_bytes(f);
    text += sha256_hex(bytes.data(), bytes.size()) + "\n";
  }
  return sha256_hex(text.data(), text.size());
}

std::string read_small_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The 4-connected region of cells at or above `level` around the peak cell.
struct CellBox {
  int r0, c0, r1, c1;  // inclusive
};

CellBox region_around_peak(const AnomalyMap& map, double level) {
  const auto peak = std::max_element(map.cells.begin(), map.cells.end()) - map.cells.begin();
  const int pr = static_cast<int>(peak / map.cols), pc = static_cast<int>(peak % map.cols);
  CellBox box{pr, pc, pr, pc};
  std::vector<uint8_t> seen(map.cells.size(), 0);
  std::vector<int> stack = {static_cast<int>(peak)};
  seen[peak] = 1;
  while (!stack.empty()) {
    const int i = stack.back();
    stack.pop_back();
    const int r = i / map.cols, c = i % map.cols;
    box = {std::min(box.r0, r), std::min(box.c0, c), std::max(box.r1, r), std::max(box.c1, c)};
    const int nr[4] = {r - 1, r + 1, r, r}, nc[4] = {c, c, c - 1, c + 1};
    for (int k = 0; k < 4; ++k) {
      if (nr[k] < 0 || nr[k] >= map.rows || nc[k] < 0 || nc[k] >= map.cols) continue;
      const int j = nr[k] * map.cols + nc[k];
      if (seen[j] || map.cells[j] < level) continue;
      seen[j] = 1;
      stack.push_back(j);
    }
  }
  return box;
}

class AnomalyDefectDetector : public DefectDetector {
 public:
  AnomalyDefectDetector(const AnomalyCameraConfig& config, const fs::path& cache_dir,
                        ThreadPool& pool) {
    std::vector<std::string> inputs;
    for (const fs::path& p : config.good_photos) inputs.push_back(p.string());
    const std::vector<fs::path> files = collect_image_files(inputs, "camera.anomaly.good_photos");
    ImageAnomalyConfig settings;
    settings.false_alarm_rate = config.false_alarm_rate;
    // The structure term (format 4) moves the whole map: with a few near-identical
    // good photos its spread is tiny and a local defect saturates the heat-map the
    // plant draws its defect boxes from, so the plant keeps the v3 terms.
    settings.structure_statistics = false;
    // Likewise the plant keeps the k-NN term rather than format 5's position
    // term: a handful of good photos gives a per-cell covariance little to go on.
    settings.use_patch_bank();
    settings.photo_statistics = true;
    std::shared_ptr<const PatchFeatureSource> source;
    if (!config.backbone.empty()) {
      source = open_backbone_features(config.backbone);
      settings.features.stride = source->stride();
      settings.photo_statistics = false;  // a texture-descriptor term
    }
    // The backbone's path and SHA-256 are part of the key: new weights refit.
    const std::string key = fit_key(files, settings, source ? source->to_json().dump() : "");
    const fs::path key_file = cache_dir / kKeyFile, model_dir = cache_dir / kModelDir;
    if (!cache_dir.empty() && read_small_file(key_file) == key) {
      try {
        model_ = ImageAnomalyModel::load(model_dir);
        from_cache_ = true;
      } catch (const std::exception&) {
        // A damaged cache is refitted below, never trusted.
      }
    }
    if (!from_cache_) {
      const auto grids = source ? patch_features_of_files(pool, files, *source)
                                : texture_features_of_files(pool, files, settings.features);
      model_ = ImageAnomalyModel::fit(pool, grids, settings);
      model_.set_feature_source(source);
      if (!cache_dir.empty()) {
        // The key goes first and comes back last: a crash in between leaves no
        // key, so the next start refits instead of trusting a torn pair.
        std::error_code ec;
        fs::create_directories(cache_dir, ec);
        fs::remove(key_file, ec);
        model_.save(model_dir);
        write_file_atomic(key_file, key);
      }
    }
    good_photos_ = files.size();
  }

  std::string name() const override { return "anomaly"; }
  // The texture descriptors are not resized: photos must arrive at the size
  // the good photos have.
  bool wants_full_resolution() const override { return true; }

  CameraFinding detect(const Image& photo) const override {
    CameraFinding out;
    const AnomalyMap map = model_.score_image(photo);
    const double threshold = std::max(model_.threshold(), 1e-12);
    out.raw_score = map.score / threshold;
    if (out.raw_score >= 1.0) {
      const CellBox b = region_around_peak(map, threshold);
      Defect d;
      d.type = "anomaly";
      d.x = std::min(b.c0 * map.stride, photo.width - 1);
      d.y = std::min(b.r0 * map.stride, photo.height - 1);
      d.width = std::max(1, std::min((b.c1 + 1) * map.stride, photo.width) - d.x);
      d.height = std::max(1, std::min((b.r1 + 1) * map.stride, photo.height) - d.y);
      d.area = static_cast<double>(d.width) * d.height;
      d.confidence = fusion::calibrate_ratio(out.raw_score);
      out.defects.push_back(d);
    }
    out.detail["score"] = map.score;
    out.detail["threshold"] = model_.threshold();
    out.detail["good_photos"] = good_photos_;
    out.detail["model_cached"] = from_cache_;
    out.annotated = evidence_picture(photo);
    draw_defects(out.annotated, out.defects, static_cast<double>(photo.width) / out.annotated.width,
                 static_cast<double>(photo.height) / out.annotated.height);
    out.heatmap_png = heatmap_png(map, photo.width, photo.height, model_.threshold());
    return out;
  }

 private:
  ImageAnomalyModel model_;
  size_t good_photos_ = 0;
  bool from_cache_ = false;
};

}  // namespace

std::unique_ptr<DefectDetector> make_anomaly_defect_detector(const AnomalyCameraConfig& config,
                                                             const fs::path& cache_dir,
                                                             ThreadPool& pool) {
  return std::make_unique<AnomalyDefectDetector>(config, cache_dir, pool);
}

}  // namespace mmfuse::inspect
