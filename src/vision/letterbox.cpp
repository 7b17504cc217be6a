#include "vision/letterbox.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

#include "mmfuse/error.h"

namespace mmfuse {

namespace {
// Python's int(round(x)): ties go to the even integer (nearbyint under the
// default rounding mode).
int py_round(double x) { return static_cast<int>(std::nearbyint(x)); }
}  // namespace

Letterboxed letterbox(const Image& image, int target_height, int target_width, bool scale_up, LetterboxLayout layout) {
  MMFUSE_CHECK(image.width > 0 && image.height > 0 &&
                   image.rgb.size() == static_cast<size_t>(image.width) * image.height * 3,
               bad_input, "letterbox: empty or inconsistent image");
  MMFUSE_CHECK(target_height > 0 && target_width > 0 && target_height <= 16384 && target_width <= 16384, bad_input,
               "letterbox: target size " + std::to_string(target_height) + "x" + std::to_string(target_width) +
                   " out of range");
  double r = std::min(static_cast<double>(target_height) / image.height, static_cast<double>(target_width) / image.width);
  if (!scale_up) r = std::min(r, 1.0);
  const int new_w = py_round(image.width * r), new_h = py_round(image.height * r);
  const double dw = (target_width - new_w) / 2.0, dh = (target_height - new_h) / 2.0;

  cv::Mat src(image.height, image.width, CV_8UC3, const_cast<uint8_t*>(image.rgb.data()));
  cv::Mat resized;
  if (new_w != image.width || new_h != image.height) cv::resize(src, resized, cv::Size(new_w, new_h), 0, 0, cv::INTER_LINEAR);
  else resized = src;
  const int top = py_round(dh - 0.1), left = py_round(dw - 0.1);
  // bottom/right follow from the total (int(round(dh + 0.1)) each side, as copyMakeBorder gets them).
  const int bottom = py_round(dh + 0.1), right = py_round(dw + 0.1);
  Letterboxed out;
  out.height = new_h + top + bottom;
  out.width = new_w + left + right;
  const size_t plane = static_cast<size_t>(out.height) * out.width;
  std::vector<float>& pixels = layout == LetterboxLayout::hwc ? out.hwc : out.chw;
  pixels.assign(plane * 3, 114.f / 255.f);
  // v / 255.f for every byte, looked up (the same floats as dividing each pixel).
  float scaled[256];
  for (int v = 0; v < 256; ++v) scaled[v] = static_cast<float>(v) / 255.f;
  for (int y = 0; y < new_h; ++y) {
    const uint8_t* row = resized.ptr<uint8_t>(y);
    const size_t at = static_cast<size_t>(y + top) * out.width + left;
    if (layout == LetterboxLayout::hwc) {
      // Interleaved rows are contiguous: the compiler vectorises the division
      // (IEEE-exact, so the same floats as the table), faster than the lookups.
      float* dst = pixels.data() + at * 3;
      for (int x = 0; x < new_w * 3; ++x) dst[x] = static_cast<float>(row[x]) / 255.f;
      continue;
    }
    for (int c = 0; c < 3; ++c) {
      float* dst = pixels.data() + c * plane + at;
      for (int x = 0; x < new_w; ++x) dst[x] = scaled[row[x * 3 + c]];
    }
  }
  return out;
}

void scale_boxes_to_image(float* xyxy, size_t count, int target_height, int target_width, int image_height,
                          int image_width, bool round_padding) {
  const double gain = std::min(static_cast<double>(target_height) / image_height,
                               static_cast<double>(target_width) / image_width);
  const double half_x = (target_width - image_width * gain) / 2;
  const double half_y = (target_height - image_height * gain) / 2;
  const float pad_x = static_cast<float>(round_padding ? py_round(half_x - 0.1) : half_x);
  const float pad_y = static_cast<float>(round_padding ? py_round(half_y - 0.1) : half_y);
  const float g = static_cast<float>(gain);
  for (size_t i = 0; i < count; ++i) {
    float* b = xyxy + i * 4;
    b[0] = std::clamp((b[0] - pad_x) / g, 0.f, static_cast<float>(image_width));
    b[1] = std::clamp((b[1] - pad_y) / g, 0.f, static_cast<float>(image_height));
    b[2] = std::clamp((b[2] - pad_x) / g, 0.f, static_cast<float>(image_width));
    b[3] = std::clamp((b[3] - pad_y) / g, 0.f, static_cast<float>(image_height));
  }
}

}  // namespace mmfuse
