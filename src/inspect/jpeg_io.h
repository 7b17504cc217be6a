// JPEG for camera photos: decoding straight to a reduced size with libjpeg's
// DCT scaling (a 4K photo judged at 640x480 needs only every 4th DCT
// frequency, so it decodes ~4x faster). Encoding is vision/image_encode.h.
#pragma once

#include <cstdint>
#include <string>

#include "vision/image.h"
#include "vision/image_encode.h"

namespace mmfuse::inspect {

bool is_jpeg(const uint8_t* data, size_t size);

struct ScaledJpeg {
  Image image;                          // decoded RGB, at 1/1, 1/2, 1/4 or 1/8 of the original
  int full_width = 0, full_height = 0;  // the original size
};

// Decodes at the smallest scale 1/n (n in 1, 2, 4, 8) whose output is still at
// least min_width x min_height. Grey and CMYK JPEGs come out as RGB. Corrupt
// data: ErrorKind::bad_input naming `name`; more than limits.max_pixels: bad_input.
ScaledJpeg decode_jpeg_scaled(const uint8_t* data, size_t size, const std::string& name,
                              int min_width, int min_height, const DecodeLimits& limits = {});

}  // namespace mmfuse::inspect
