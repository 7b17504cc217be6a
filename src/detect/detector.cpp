#include "detect/detector.h"

#include "detect/ensemble.h"
#include "detect/hotelling_t2.h"
#include "detect/isolation_forest.h"
#include "detect/mset.h"
#include "detect/pca_t2q.h"
#include "mmfuse/error.h"

namespace mmfuse::sensor {

const std::vector<std::string>& detector_names() {
  static const std::vector<std::string> names = {"iforest", "t2", "pca", "mset", "ensemble"};
  return names;
}

std::unique_ptr<Detector> make_detector(const std::string& name, const DetectorOptions& options) {
  if (name == "iforest") return std::make_unique<IsolationForest>(options);
  if (name == "t2") return std::make_unique<HotellingT2>(options);
  if (name == "pca") return std::make_unique<PcaT2Q>(options);
  if (name == "mset") return std::make_unique<Mset>(options);
  if (name == "ensemble") return std::make_unique<Ensemble>(options);
  std::string known;
  for (const auto& n : detector_names()) known += (known.empty() ? "" : ", ") + n;
  throw_error(ErrorKind::bad_input,
              "unknown detector method '" + name + "' (known: " + known + ")");
}

}  // namespace mmfuse::sensor
