// CLIP-style image preprocessing, numerically identical to Hugging Face
// CLIPImageProcessor / ChineseCLIPImageProcessor / BlipImageProcessor
// (transformers 4.44 on PIL 9.4; BLIP: exact size, no crop):
// resize (shortest edge or exact size, PIL resampling on uint8), centre crop
// (floor division, zero padding when the image is smaller), rescale
// float32(u8 * factor computed in float64), normalise (x - mean) / std in
// float32, output CHW RGB.
#pragma once

#include <filesystem>

#include "vision/image.h"

namespace mmfuse {

struct ImageProcessorConfig {  // from preprocessor_config.json, HF defaults for absent keys
  bool do_resize = true;
  int shortest_edge = 224;
  int resize_h = 0, resize_w = 0;  // exact size when > 0 (size: {height, width})
  int resample = 3;
  bool do_center_crop = true;
  int crop_h = 224, crop_w = 224;
  bool do_rescale = true;
  double rescale_factor = 1.0 / 255.0;
  bool do_normalize = true;
  float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
  float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
  bool do_convert_rgb = true;

  // Throws Error naming the file and field: not_found (missing file), bad_input
  // (malformed JSON or value), unsupported (a valid setting that is not handled,
  // e.g. a resample filter other than bilinear/bicubic, or a configuration
  // whose output size depends on the image).
  static ImageProcessorConfig from_file(const std::filesystem::path& preprocessor_config_json);

  int out_height() const;  // final tensor size
  int out_width() const;
};

// Writes out_height*out_width*3 floats, CHW, into `out`.
void preprocess_image(const Image& img, const ImageProcessorConfig& cfg, float* out);

}  // namespace mmfuse
