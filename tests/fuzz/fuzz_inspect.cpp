// Fuzzes the inspection parsers: the plant file (YAML through yaml-cpp, then
// validation), the infrared grey-PNG decoder and the scaled JPEG decoder of
// camera photos. Any input must parse or throw mmfuse::Error.
#include <cstdint>
#include <string>

#include "inspect/jpeg_io.h"
#include "inspect/plant.h"
#include "inspect/png_io.h"
#include "mmfuse/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto plant = mmfuse::inspect::parse_plant(
        std::string(reinterpret_cast<const char*>(data), size), "/fuzz/plant.yaml");
    (void)plant;
  } catch (const mmfuse::Error&) {
  }
  try {
    const auto frame = mmfuse::inspect::decode_gray_png(data, size, "fuzz");
    (void)frame;
  } catch (const mmfuse::Error&) {
  }
  try {
    const auto photo = mmfuse::inspect::decode_jpeg_scaled(data, size, "fuzz", 64, 48, {1 << 22});
    (void)photo;
  } catch (const mmfuse::Error&) {
  }
  return 0;
}
