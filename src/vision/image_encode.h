// Image encoding for evidence and generated test/demo images: baseline JPEG
// (libjpeg-turbo) and PNG (libpng). Thread-safe; failures throw Error(internal).
#pragma once

#include <string>

#include "vision/image.h"

namespace mmfuse {

// RGB -> baseline JPEG bytes (4:2:0, given quality 1..100).
std::string encode_jpeg(const Image& image, int quality);

// 8-bit RGB (channels 3) or grey (channels 1, bit_depth 8 or 16; 16-bit samples
// given as uint16_t in host order), row-major width * height * channels samples,
// -> PNG bytes (compression level 3: fast over small).
std::string encode_png(const void* pixels, int width, int height, int channels, int bit_depth);

}  // namespace mmfuse
