#include "vision/draw_boxes.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

namespace mmfuse {

namespace {
// Ultralytics' Colors palette (utils/plotting.py), RGB.
constexpr unsigned kPalette[] = {0xFF3838, 0xFF9D97, 0xFF701F, 0xFFB21D, 0xCFD231, 0x48F90A, 0x92CC17,
                                 0x3DDB86, 0x1A9334, 0x00D4BB, 0x2C99A8, 0x00C2FF, 0x344593, 0x6473FF,
                                 0x0018EC, 0x8438FF, 0x520085, 0xCB38FF, 0xFF95C8, 0xFF37C7};
}  // namespace

void draw_boxes(Image* image, const std::vector<LabeledBox>& boxes) {
  if (image->width <= 0 || image->height <= 0) return;
  cv::Mat m(image->height, image->width, CV_8UC3, image->rgb.data());
  const int thickness = std::max(static_cast<int>(std::lround((image->width + image->height) / 2 * 0.003)), 2);
  const double font_scale = thickness / 3.0;
  const int font_thickness = std::max(thickness - 1, 1);
  for (const LabeledBox& b : boxes) {
    const unsigned c = kPalette[static_cast<unsigned>(std::max(0, b.color_index)) % std::size(kPalette)];
    const cv::Scalar color((c >> 16) & 0xff, (c >> 8) & 0xff, c & 0xff);
    const cv::Point p1(static_cast<int>(b.x1), static_cast<int>(b.y1)), p2(static_cast<int>(b.x2), static_cast<int>(b.y2));
    cv::rectangle(m, p1, p2, color, thickness, cv::LINE_AA);
    if (b.label.empty()) continue;
    int baseline = 0;
    const cv::Size text = cv::getTextSize(b.label, cv::FONT_HERSHEY_SIMPLEX, font_scale, font_thickness, &baseline);
    const bool outside = p1.y - text.height >= 3;
    const cv::Point t2(p1.x + text.width, outside ? p1.y - text.height - 3 : p1.y + text.height + 3);
    cv::rectangle(m, p1, t2, color, -1, cv::LINE_AA);
    const double luma = 0.299 * ((c >> 16) & 0xff) + 0.587 * ((c >> 8) & 0xff) + 0.114 * (c & 0xff);
    const cv::Scalar text_color = luma > 160 ? cv::Scalar(0, 0, 0) : cv::Scalar(255, 255, 255);
    cv::putText(m, b.label, cv::Point(p1.x, outside ? p1.y - 2 : p1.y + text.height + 2), cv::FONT_HERSHEY_SIMPLEX,
                font_scale, text_color, font_thickness, cv::LINE_AA);
  }
}

}  // namespace mmfuse
