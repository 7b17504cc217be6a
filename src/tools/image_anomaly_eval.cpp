#include "tools/image_anomaly_eval.h"

#include <chrono>
#include <vector>

#include "mmfuse/error.h"
#include "tools/dataset_manifest.h"
#include "tools/sound_eval.h"
#include "vision/image.h"

namespace mmfuse {

namespace fs = std::filesystem;

namespace {

struct Entry {
  fs::path image, mask;
  std::string cls;
  bool defect = false;
};

std::vector<Entry> read_manifest(const fs::path& root) {
  std::vector<Entry> out;
  for (const auto& cells : read_dataset_manifest(root, "image,mask,class,is_defect", 4)) {
    Entry e;
    e.image = root / cells[0];
    if (!cells[1].empty()) e.mask = root / cells[1];
    e.cls = cells[2];
    e.defect = cells[3] == "1";
    out.push_back(std::move(e));
  }
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

ImageEvalReport evaluate_image_anomaly(ThreadPool& pool, const fs::path& root,
                                       const ImageAnomalyConfig& config, const std::string& good_class) {
  const std::vector<Entry> entries = read_manifest(root);
  std::vector<fs::path> good_files;
  std::vector<const Entry*> defects;
  for (const auto& e : entries) {
    if (!e.defect && e.cls == good_class) good_files.push_back(e.image);
    if (e.defect) defects.push_back(&e);
  }
  MMFUSE_CHECK(!good_files.empty() && !defects.empty(), bad_input,
               (root / "manifest.csv").string() + ": needs good (" + good_class + ") and defect photos");
  ImageEvalReport r;
  r.good = good_files.size();
  r.defects = defects.size();

  auto t0 = std::chrono::steady_clock::now();
  const std::vector<PatchGrid> good = texture_features_of_files(pool, good_files, config.features);
  ImageCalibration cal;
  const ImageAnomalyModel model = ImageAnomalyModel::fit(pool, good, config, &cal);
  r.fit_seconds = seconds_since(t0);
  r.threshold = model.threshold();
  r.bank_rows = model.bank_rows();
  r.model_bytes = config.patch_knn ? (model.bank_rows() + 2) * static_cast<size_t>(model.dim()) * sizeof(float) : 0;
  if (config.position_gaussian) {  // per cell a mean and an inverse covariance
    const size_t cells = static_cast<size_t>(config.features.position_grid) * config.features.position_grid;
    const size_t d = static_cast<size_t>(config.features.aligned_dim());
    r.model_bytes += (cells * (d + d * (d + 1) / 2) + 2 * d) * sizeof(float);
  }
  if (config.photo_statistics)  // one statistics row per good photo, mean and scale
    r.model_bytes += (model.training_images() + 2) * static_cast<size_t>(config.features.statistics_dim()) * sizeof(float);
  if (config.structure_statistics)
    r.model_bytes += (model.training_images() + 2) * static_cast<size_t>(TextureFeatureConfig::structure_dim()) * sizeof(float);

  // Defect photos: one per core, timed end to end (decode, features, score).
  std::vector<AnomalyMap> maps(defects.size());
  t0 = std::chrono::steady_clock::now();
  pool.parallel_tasks(defects.size(), [&](size_t i, int) {
    maps[i] = model.score_image(decode_image_file(defects[i]->image));
  });
  r.images_per_second = static_cast<double>(defects.size()) / seconds_since(t0);

  std::vector<double> scores(cal.held_out_scores);
  std::vector<int> labels(scores.size(), 0);
  size_t false_alarms = 0, hits = 0;
  for (double s : cal.held_out_scores) false_alarms += s >= r.threshold;
  std::map<std::string, std::vector<double>> by_class;
  for (size_t i = 0; i < defects.size(); ++i) {
    scores.push_back(maps[i].score);
    labels.push_back(1);
    hits += maps[i].score >= r.threshold;
    by_class[defects[i]->cls].push_back(maps[i].score);
  }
  r.image_auroc = roc_auc(scores, labels);
  r.false_alarm_rate = static_cast<double>(false_alarms) / static_cast<double>(r.good);
  r.recall = static_cast<double>(hits) / static_cast<double>(r.defects);
  for (const auto& [cls, s] : by_class) {
    std::vector<double> sc(cal.held_out_scores);
    std::vector<int> lb(sc.size(), 0);
    sc.insert(sc.end(), s.begin(), s.end());
    lb.insert(lb.end(), s.size(), 1);
    r.class_auroc[cls] = roc_auc(sc, lb);
  }

  // Pixel AUROC on the grid: a cell is defective when its centre pixel is in the mask.
  std::vector<double> cell_scores;
  std::vector<int> cell_labels;
  for (size_t i = 0; i < defects.size(); ++i) {
    if (defects[i]->mask.empty()) continue;
    const Image mask = decode_image_file(defects[i]->mask);
    const AnomalyMap& m = maps[i];
    for (int y = 0; y < m.rows; ++y)
      for (int x = 0; x < m.cols; ++x) {
        const int px = x * m.stride + m.stride / 2, py = y * m.stride + m.stride / 2;
        if (px >= mask.width || py >= mask.height) continue;
        cell_scores.push_back(m.cells[static_cast<size_t>(y) * m.cols + x]);
        cell_labels.push_back(mask.rgb[(static_cast<size_t>(py) * mask.width + px) * 3] > 127 ? 1 : 0);
      }
  }
  r.pixel_auroc = roc_auc(cell_scores, cell_labels);
  return r;
}

}  // namespace mmfuse
