// libFuzzer target for the image decoders (JPEG, PNG, WebP, BMP) and, on
// success, the CLIP preprocessing pipeline. Any input must either decode or
// throw mmfuse::Error; crashes, leaks and sanitizer reports are bugs.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "mmfuse/error.h"
#include "vision/image.h"
#include "vision/image_processor.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Keep allocations small enough for the fuzzer's default memory limit.
  mmfuse::DecodeLimits limits;
  limits.max_pixels = 4 * 1024 * 1024;
  try {
    const mmfuse::Image img = mmfuse::decode_image_memory(data, size, "fuzz", limits);
    if (img.width <= 512 && img.height <= 512) {
      const mmfuse::ImageProcessorConfig cfg;
      std::vector<float> out(static_cast<size_t>(cfg.out_height()) * cfg.out_width() * 3);
      mmfuse::preprocess_image(img, cfg, out.data());
    }
  } catch (const mmfuse::Error&) {
  }
  return 0;
}
