#include "detect/detection_json.h"

#include "core/strings.h"

namespace mmfuse {

nlohmann::ordered_json detections_to_json(const std::vector<Detection>& detections) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const Detection& d : detections)
    out.push_back({{"class_id", d.class_id},
                   {"class", d.class_name},
                   {"score", shortest_float(d.score)},
                   {"box", {shortest_float(d.x1), shortest_float(d.y1), shortest_float(d.x2), shortest_float(d.y2)}}});
  return out;
}

}  // namespace mmfuse
