// Ultralytics' LetterBox pre-processing (ultralytics 8.2 data/augment.py, as its
// predictor calls it for exported models: auto=False, scaleup=True,
// center=True): scale by the smaller ratio, resize with OpenCV's bilinear
// cv2.resize, pad with grey 114 (Python's round-half-even rounding of the
// padding included), then float CHW RGB / 255 — the network input.
#pragma once

#include <vector>

#include "vision/image.h"

namespace mmfuse {

struct Letterboxed {
  int height = 0, width = 0;  // the network input size
  std::vector<float> chw;     // 3 x height x width, RGB in [0, 1] (empty when `hwc` is filled)
  std::vector<float> hwc;     // height x width x 3, the same floats interleaved (LetterboxLayout::hwc)
};

// Planar is what the ONNX graph takes; interleaved (NHWC) is what its
// convolutions run on, so a runner planned for NHWC input skips a reorder.
enum class LetterboxLayout { chw, hwc };

// `image` is RGB; the result is exactly what Ultralytics feeds the network for
// the same pixels read by cv2.imread. Throws Error(bad_input) for an empty
// image or a non-positive target size.
Letterboxed letterbox(const Image& image, int target_height, int target_width, bool scale_up = true,
                      LetterboxLayout layout = LetterboxLayout::chw);

// Ultralytics' scale_boxes: maps xyxy boxes on the letterboxed input
// (target size) back to the original image and clips them to it. Ultralytics 8
// rounds the padding as LetterBox did (round(pad - 0.1)); YOLOv5 7.0 subtracts
// the exact half padding (`round_padding` false).
void scale_boxes_to_image(float* xyxy, size_t count, int target_height, int target_width, int image_height,
                          int image_width, bool round_padding = true);

}  // namespace mmfuse
