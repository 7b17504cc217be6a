// PNG files the inspection needs beyond the RGB decoder in src/vision: reading
// infrared frames as raw 8- or 16-bit grey values (the calibration needs the
// sensor's numbers, not display RGB), and writing evidence images.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "vision/image_encode.h"

namespace mmfuse::inspect {

struct GrayFrame {
  int width = 0, height = 0;
  int bit_depth = 8;             // 8 or 16 (1/2/4-bit grey is widened to 8)
  std::vector<uint16_t> pixels;  // width * height raw sample values, row-major
};

// Decodes a greyscale PNG (colour type grey or grey+alpha, alpha ignored).
// Colour PNGs are ErrorKind::unsupported (an IR camera's export must be the raw
// grey counts); corrupt data is bad_input. `name` appears in messages.
GrayFrame decode_gray_png(const uint8_t* data, size_t size, const std::string& name);
GrayFrame read_gray_png(const std::filesystem::path& path);

// encode_png (vision/image_encode.h) + an atomic write (temporary file + rename).
void write_png(const std::filesystem::path& path, const void* pixels, int width, int height,
               int channels, int bit_depth);

}  // namespace mmfuse::inspect
