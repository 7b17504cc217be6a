// Fuzzes the Pascal-VOC box reader (`image eval-boxes` annotations).
#include <cstdint>
#include <string>

#include "mmfuse/error.h"
#include "vision/voc_boxes.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    (void)mmfuse::parse_voc_boxes(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  } catch (const mmfuse::Error&) {
  }
  return 0;
}
