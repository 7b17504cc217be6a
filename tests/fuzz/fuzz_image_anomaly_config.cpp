// Fuzzes the image anomaly model's settings reader (config.json "settings" of
// an `image fit` model folder).
#include <cstdint>
#include <nlohmann/json.hpp>

#include "detect/image_anomaly.h"
#include "mmfuse/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  try {
    const mmfuse::ImageAnomalyConfig c = mmfuse::image_anomaly_config_from_json(j, "fuzz");
    (void)mmfuse::image_anomaly_config_to_json(c);
  } catch (const mmfuse::Error&) {
  }
  return 0;
}
