// Ultralytics pre/post-processing on hand-computed cases: LetterBox (ratios,
// Python's half-even rounding, grey 114), scale_boxes (padding, gain, clip),
// and non_max_suppression for both output layouts.
#include <gtest/gtest.h>

#include "mmfuse/error.h"
#include "models/yolo_postprocess.h"
#include "vision/letterbox.h"

namespace mmfuse {
namespace {

Image uniform(int w, int h, uint8_t r, uint8_t g, uint8_t b) {
  Image img;
  img.width = w;
  img.height = h;
  for (int i = 0; i < w * h; ++i) img.rgb.insert(img.rgb.end(), {r, g, b});
  return img;
}

TEST(Letterbox, PadsTheShortSideEvenly) {
  const Letterboxed lb = letterbox(uniform(100, 50, 10, 20, 30), 64, 64);
  ASSERT_EQ(lb.height, 64);
  ASSERT_EQ(lb.width, 64);
  const float grey = 114.f / 255.f;
  for (int y = 0; y < 64; ++y) {
    const bool image_row = y >= 16 && y < 48;
    EXPECT_FLOAT_EQ(lb.chw[y * 64 + 5], image_row ? 10.f / 255.f : grey) << y;
    EXPECT_FLOAT_EQ(lb.chw[64 * 64 + y * 64 + 5], image_row ? 20.f / 255.f : grey) << y;
    EXPECT_FLOAT_EQ(lb.chw[2 * 64 * 64 + y * 64 + 5], image_row ? 30.f / 255.f : grey) << y;
  }
}

TEST(Letterbox, InterleavedHoldsThePlanarFloats) {
  Image img = uniform(37, 23, 0, 0, 0);
  for (size_t i = 0; i < img.rgb.size(); ++i) img.rgb[i] = static_cast<uint8_t>(i * 7 + i / 5);
  const Letterboxed planar = letterbox(img, 64, 48);
  const Letterboxed inter = letterbox(img, 64, 48, true, LetterboxLayout::hwc);
  ASSERT_TRUE(inter.chw.empty());
  ASSERT_EQ(inter.hwc.size(), planar.chw.size());
  const size_t plane = 64 * 48;
  for (size_t p = 0; p < plane; ++p)
    for (size_t c = 0; c < 3; ++c) ASSERT_EQ(inter.hwc[p * 3 + c], planar.chw[c * plane + p]) << p << " " << c;
}

TEST(Letterbox, RoundsHalfToEvenLikePython) {
  // 5x2 scaled by 0.5: width round(2.5) = 2 (Python), padding 3 + 3 on an 8-wide input.
  const Letterboxed lb = letterbox(uniform(5, 2, 200, 100, 50), 1, 8);
  ASSERT_EQ(lb.width, 8);
  ASSERT_EQ(lb.height, 1);
  const float grey = 114.f / 255.f;
  const float want[8] = {grey, grey, grey, 200.f / 255.f, 200.f / 255.f, grey, grey, grey};
  for (int x = 0; x < 8; ++x) EXPECT_FLOAT_EQ(lb.chw[x], want[x]) << x;
  EXPECT_THROW(letterbox(Image{}, 64, 64), Error);
}

TEST(ScaleBoxes, RemovesPaddingDividesGainAndClips) {
  float boxes[8] = {10, 20, 50, 40, -5, 10, 70, 60};
  scale_boxes_to_image(boxes, 2, 64, 64, 50, 100);
  const float want[8] = {15.625f, 6.25f, 78.125f, 37.5f, 0, 0, 100, 50};
  for (int i = 0; i < 8; ++i) EXPECT_FLOAT_EQ(boxes[i], want[i]) << i;
}

// (4 + 2 classes) x 4 anchors, field-major like YOLOv8's output.
std::vector<float> v8_output() {
  const float anchors[4][6] = {{10, 10, 10, 10, 0.9f, 0.1f},
                               {11, 10, 10, 10, 0.8f, 0.2f},
                               {11, 10, 10, 10, 0.1f, 0.85f},
                               {50, 50, 4, 4, 0.2f, 0.24f}};
  std::vector<float> out(6 * 4);
  for (int a = 0; a < 4; ++a)
    for (int f = 0; f < 6; ++f) out[f * 4 + a] = anchors[a][f];
  return out;
}

TEST(YoloNms, AnchorFreeLayout) {
  const std::vector<float> out = v8_output();
  NmsOptions o;
  auto d = yolo_nms(out.data(), YoloLayout::anchor_free, 6, 4, o);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].class_id, 0);
  EXPECT_FLOAT_EQ(d[0].score, 0.9f);
  EXPECT_FLOAT_EQ(d[0].box[0], 5);
  EXPECT_FLOAT_EQ(d[0].box[1], 5);
  EXPECT_FLOAT_EQ(d[0].box[2], 15);
  EXPECT_FLOAT_EQ(d[0].box[3], 15);
  EXPECT_EQ(d[1].class_id, 1);
  EXPECT_FLOAT_EQ(d[1].score, 0.85f);
  o.agnostic = true;  // a2 overlaps a0 (IoU 0.82) across classes
  EXPECT_EQ(yolo_nms(out.data(), YoloLayout::anchor_free, 6, 4, o).size(), 1u);
  o.agnostic = false;
  o.classes = {1};
  d = yolo_nms(out.data(), YoloLayout::anchor_free, 6, 4, o);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].class_id, 1);
  o.classes.clear();
  o.max_det = 1;
  EXPECT_EQ(yolo_nms(out.data(), YoloLayout::anchor_free, 6, 4, o).size(), 1u);
  o.max_det = 300;
  o.iou = 0.85f;  // IoU 0.82 no longer suppresses
  EXPECT_EQ(yolo_nms(out.data(), YoloLayout::anchor_free, 6, 4, o).size(), 3u);
  o.conf = 0.95f;
  EXPECT_TRUE(yolo_nms(out.data(), YoloLayout::anchor_free, 6, 4, o).empty());
}

TEST(YoloNms, ObjectnessLayout) {
  // rows = boxes, cols = xywh, objectness, 2 class scores.
  const std::vector<float> out = {10, 10, 10, 10, 0.5f, 0.9f, 0.1f,   // 0.45, class 0
                                  10, 10, 10, 10, 0.2f, 1.0f, 0.0f,   // objectness below conf
                                  30, 30, 10, 10, 0.9f, 0.1f, 0.6f};  // 0.54, class 1
  auto d = yolo_nms(out.data(), YoloLayout::objectness, 3, 7, NmsOptions{});
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].class_id, 1);
  EXPECT_FLOAT_EQ(d[0].score, 0.9f * 0.6f);
  EXPECT_FLOAT_EQ(d[0].box[0], 25);
  EXPECT_EQ(d[1].class_id, 0);
  EXPECT_FLOAT_EQ(d[1].score, 0.5f * 0.9f);
}

TEST(YoloNms, TorchvisionNmsOrderAndThreshold) {
  // Three boxes: b1 overlaps b0 with IoU exactly 0.5 (kept at iou 0.5: suppression needs >).
  const float boxes[12] = {0, 0, 10, 10, 0, 0, 10, 5, 20, 20, 30, 30};
  const float scores[3] = {0.5f, 0.9f, 0.7f};
  EXPECT_EQ(nms_indices(boxes, scores, 3, 0.5f), (std::vector<size_t>{1, 2, 0}));
  EXPECT_EQ(nms_indices(boxes, scores, 3, 0.49f), (std::vector<size_t>{1, 2}));
}

}  // namespace
}  // namespace mmfuse
