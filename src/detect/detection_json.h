// Detections as JSON, the one shape `mmfuse detect --json` and POST /v1/detect
// share: [{"class_id": i, "class": "...", "score": s, "box": [x1, y1, x2, y2]}],
// boxes in original-image pixels, keys in that order. Floats print as their
// shortest round trip.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "models/yolo.h"

namespace mmfuse {

nlohmann::ordered_json detections_to_json(const std::vector<Detection>& detections);

}  // namespace mmfuse
