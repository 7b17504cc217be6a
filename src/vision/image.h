// Image decoding: JPEG, PNG, WebP and BMP files to 8-bit RGB, the way PIL 9.4's
// Image.open(...).convert('RGB') does it (see docs in image.cpp). The format is
// detected from the magic bytes, never from the file extension.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace mmfuse {

// 8-bit RGB, row-major HWC.
struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // width*height*3
};

struct DecodeLimits {
  // Images with more pixels are rejected before any pixel buffer is allocated.
  // The default is PIL's decompression-bomb error threshold (2 * MAX_IMAGE_PIXELS).
  int64_t max_pixels = 178956970;
};

// Throws Error(not_found) when the file cannot be opened, Error(bad_input) for
// corrupt, truncated, empty or too large images and Error(unsupported) for
// well-formed images of a kind that is not handled (GIF, TIFF, animated WebP...).
// Every message names the file.
Image decode_image_file(const std::filesystem::path& path, const DecodeLimits& limits = {});

// `name` is used in error messages.
Image decode_image_memory(const uint8_t* data, size_t size, const std::string& name,
                          const DecodeLimits& limits = {});

}  // namespace mmfuse
