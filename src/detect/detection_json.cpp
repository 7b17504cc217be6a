#include "detect/detection_json.h"

#include <charconv>
#include <string>

namespace mmfuse {

namespace {

// The double that prints as the float's shortest round-trip form (0.41741627,
// not 0.4174162745475769).
double shortest(float value) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, value);
  return std::stod(std::string(buf, r.ptr));
}

}  // namespace

nlohmann::json detections_to_json(const std::vector<Detection>& detections) {
  nlohmann::json out = nlohmann::json::array();
  for (const Detection& d : detections)
    out.push_back({{"class_id", d.class_id},
                   {"class", d.class_name},
                   {"score", shortest(d.score)},
                   {"box", {shortest(d.x1), shortest(d.y1), shortest(d.x2), shortest(d.y2)}}});
  return out;
}

}  // namespace mmfuse
