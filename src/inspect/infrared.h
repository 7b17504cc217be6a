// Infrared frames: raw counts -> degrees C with the point's linear calibration
// T = a * p + b, hot regions above the threshold as connected components, and
// a false-colour overlay saved as evidence.
#pragma once

#include <vector>

#include "inspect/plant.h"
#include "inspect/png_io.h"
#include "vision/image.h"

namespace mmfuse::inspect {

struct HotRegion {
  int x = 0, y = 0, width = 0, height = 0;  // bounding box, pixels
  int area = 0;                             // pixels above the threshold
  double max_c = 0.0, mean_c = 0.0;         // over the region's pixels
  double cx = 0.0, cy = 0.0;                // centroid, pixels
};

struct InfraredFinding {
  std::vector<HotRegion> regions;                 // area >= min_area, hottest first
  double max_c = 0.0, mean_c = 0.0, min_c = 0.0;  // whole frame
  double raw_score = 0.0;  // r = exp((T_max - T_hot) / 10 C), >= 1 exactly when regions exist
  Image overlay;           // false colour with the regions boxed (only when asked for)
};

// Pixels strictly above hot_threshold_c are hot; regions are 8-connected.
InfraredFinding analyze_infrared(const GrayFrame& frame, const InfraredConfig& config,
                                 bool want_overlay);

}  // namespace mmfuse::inspect
