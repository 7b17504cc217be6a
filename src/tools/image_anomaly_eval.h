// Evaluation of the weight-free image anomaly detector on a folder laid out
// like the shared magnetic-tile set: manifest.csv (image, mask, class,
// is_defect, ...), defect-free photos in the class "MT_Free". The model is
// fitted on every defect-free photo; each of them is scored by its k-fold
// model (the calibration scores, never scored by a model that saw it), each
// defect photo by the full model. Image AUROC (overall and per defect class),
// pixel AUROC on the 8-pixel grid of the defect photos against their masks,
// the false-alarm rate and recall at the fitted threshold, speed and model size.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "core/thread_pool.h"
#include "detect/image_anomaly.h"

namespace mmfuse {

struct ImageEvalReport {
  size_t good = 0, defects = 0;
  double image_auroc = 0.0;
  std::map<std::string, double> class_auroc;  // defect class vs the good photos
  double pixel_auroc = 0.0;
  double threshold = 0.0;
  double false_alarm_rate = 0.0;  // of the good photos' held-out scores at the threshold
  double recall = 0.0;            // of the defect photos at the threshold
  double fit_seconds = 0.0;
  double images_per_second = 0.0;  // decode + features + score of the defect photos
  size_t model_bytes = 0;          // the bank, mean and scale as float32
  size_t bank_rows = 0;
};

ImageEvalReport evaluate_image_anomaly(ThreadPool& pool, const std::filesystem::path& root,
                                       const ImageAnomalyConfig& config,
                                       const std::string& good_class = "MT_Free");

}  // namespace mmfuse
