// Fuzzes the timm ResNet config.json reader (architecture, model_args,
// pretrained_cfg of a backbone folder given to `image fit --backbone`).
#include <cstdint>
#include <nlohmann/json.hpp>

#include "mmfuse/error.h"
#include "models/timm_resnet.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  (void)mmfuse::is_timm_resnet_config(j);
  try {
    (void)mmfuse::timm_resnet_config_from_json(j, "fuzz");
  } catch (const mmfuse::Error&) {
  }
  return 0;
}
