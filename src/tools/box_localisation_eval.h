// Localisation of the image anomaly detector on a folder laid out like the
// shared NEU-DET steel set: manifest.csv (image, annotation, class,
// num_boxes), Pascal-VOC XML boxes, every photo defective (no good photos).
// Protocol, leave-one-out within each class: the model for photo i is fitted
// on the grid cells *outside* the boxes of the class's other photos (the
// defect-free surface around the defects), then photo i is scored. The
// heat-map's top region is its highest `top_fraction` of cells; a box is hit
// when a top cell's centre lies inside it. Also: the share of photos whose
// peak cell lies in a box, and the chance level of that (the boxes' share of
// the photo's cells).
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "detect/backbone_features.h"
#include "detect/image_anomaly.h"
#include "vision/voc_boxes.h"

namespace mmfuse {

struct BoxClassResult {
  size_t photos = 0, boxes = 0, boxes_hit = 0, peaks_in_box = 0;
  double chance = 0.0;  // mean share of a photo's cells inside its boxes
};

struct BoxEvalReport {
  std::map<std::string, BoxClassResult> classes;
  BoxClassResult all;
  double top_fraction = 0.0;
  double seconds = 0.0;
};

// `source` null: the weight-free texture descriptors of `config`.
BoxEvalReport evaluate_box_localisation(ThreadPool& pool, const std::filesystem::path& root,
                                        const ImageAnomalyConfig& config,
                                        std::shared_ptr<const PatchFeatureSource> source,
                                        double top_fraction = 0.05);

}  // namespace mmfuse
