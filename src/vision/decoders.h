// Internal: the per-format decoders behind decode_image_memory(). Each one gets
// the whole file in memory, returns PIL-equivalent RGB and throws mmfuse::Error
// whose message starts with the image name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "mmfuse/error.h"
#include "vision/image.h"

namespace mmfuse::detail {

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name,
                  const DecodeLimits& limits);
Image decode_png(const uint8_t* data, size_t size, const std::string& name,
                 const DecodeLimits& limits);
Image decode_webp(const uint8_t* data, size_t size, const std::string& name,
                  const DecodeLimits& limits);
Image decode_bmp(const uint8_t* data, size_t size, const std::string& name,
                 const DecodeLimits& limits);

// "image 'name': what" as Error(kind).
[[noreturn]] void image_error(ErrorKind kind, const std::string& name, const std::string& what);

// Rejects empty or negative sizes and more than limits.max_pixels pixels (bad_input).
void check_image_size(int64_t width, int64_t height, const std::string& name,
                      const DecodeLimits& limits);

// An Image of the given (already checked) size with its pixel buffer allocated.
Image make_image(int width, int height);

}  // namespace mmfuse::detail
