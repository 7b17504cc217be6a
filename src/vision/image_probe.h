// Reads an encoded image's format and dimensions from its header alone, without
// decoding pixels, so a server can refuse decompression bombs (a few KB of PNG
// that would inflate to gigabytes) before any work or allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace mmfuse {

struct ImageHeader {
  std::string format;  // "png", "jpeg", "webp" or "bmp"
  int64_t width = 0, height = 0;
};

// The header's size, or nothing when the bytes are not a PNG, JPEG, WebP or BMP
// whose header could be read (truncated headers included). Never throws.
std::optional<ImageHeader> probe_image_header(const uint8_t* data, size_t size);

}  // namespace mmfuse
