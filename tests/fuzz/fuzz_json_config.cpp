// Fuzzes JSON parsing and the config.json / preprocessor_config.json readers.
#include <cstdint>
#include <nlohmann/json.hpp>

#include "mmfuse/error.h"
#include "models/bert.h"
#include "models/chinese_clip.h"
#include "models/clip_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  try {
    mmfuse::ClipConfig::from_json(j, "fuzz");
  } catch (const mmfuse::Error&) {
  }
  try {
    mmfuse::BertConfig::from_json(j, "fuzz");
  } catch (const mmfuse::Error&) {
  }
  try {
    mmfuse::ChineseClipConfig::from_json(j, "fuzz");
  } catch (const mmfuse::Error&) {
  }
  return 0;
}
