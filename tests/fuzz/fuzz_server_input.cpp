// libFuzzer target for what the server parses from untrusted request bodies:
// the image header probe (decompression-bomb check), base64 / data URLs, and
// the limited image decode behind /v1/embeddings and /v1/classify. Garbage must
// end in mmfuse::Error or HttpError, never a crash; the probe must agree with
// the decoder about the size of every image that decodes.
#include <cstdint>
#include <string>
#include <vector>

#include "mmfuse/error.h"
#include "server/http_util.h"
#include "vision/image_probe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto header = mmfuse::probe_image_header(data, size);
  try {
    const std::vector<uint8_t> bytes(data, data + size);
    const mmfuse::Image image = mmfuse::server::decode_limited_image(bytes, "fuzz", 1 << 22);
    // An image that decodes was measured correctly by the probe.
    if (!header || header->width != image.width || header->height != image.height) __builtin_trap();
  } catch (const mmfuse::Error&) {
  } catch (const mmfuse::server::HttpError&) {
  }
  try {
    const std::string text(reinterpret_cast<const char*>(data), size);
    const auto decoded = mmfuse::server::decode_data_url(text, "fuzz");
    const std::string again = mmfuse::server::base64_encode(decoded.data(), decoded.size());
    (void)again;
  } catch (const mmfuse::Error&) {
  }
  return 0;
}
