// Infrared: pixel -> degrees C calibration, hot regions (area, max/mean,
// box, centroid) exact on constructed frames, the strict threshold, and the
// grey PNG reader/writer (8- and 16-bit, colour refused, garbage rejected).
#include <gtest/gtest.h>

#include <filesystem>

#include "inspect/infrared.h"
#include "inspect/png_io.h"
#include "mmfuse/error.h"

namespace mmfuse::inspect {
namespace {

// a = 0.25 and b = -50 are exact in binary, so temperatures are exact too.
InfraredConfig config() {
  InfraredConfig c;
  c.a = 0.25;
  c.b = -50.0;
  c.hot_threshold_c = 80.0;
  c.min_area = 5;
  return c;
}

GrayFrame frame(int w, int h, uint16_t value) {
  GrayFrame f;
  f.width = w;
  f.height = h;
  f.bit_depth = 16;
  f.pixels.assign(static_cast<size_t>(w) * h, value);
  return f;
}

void fill(GrayFrame& f, int x, int y, int w, int h, uint16_t v) {
  for (int r = y; r < y + h; ++r)
    for (int c = x; c < x + w; ++c) f.pixels[static_cast<size_t>(r) * f.width + c] = v;
}

TEST(InspectInfrared, HotRegionsAreExact) {
  GrayFrame f = frame(64, 48, 280);  // 20 C
  fill(f, 10, 5, 3, 4, 600);         // 100 C, 12 pixels
  fill(f, 11, 6, 1, 1, 620);         // one pixel at 105 C inside it
  fill(f, 40, 30, 2, 2, 560);        // 90 C but only 4 pixels: below min_area
  fill(f, 50, 10, 6, 1, 520);        // exactly 80 C: not above the threshold
  const InfraredFinding r = analyze_infrared(f, config(), true);
  ASSERT_EQ(r.regions.size(), 1u);
  const HotRegion& h = r.regions[0];
  EXPECT_EQ(h.x, 10);
  EXPECT_EQ(h.y, 5);
  EXPECT_EQ(h.width, 3);
  EXPECT_EQ(h.height, 4);
  EXPECT_EQ(h.area, 12);
  EXPECT_DOUBLE_EQ(h.max_c, 105.0);
  EXPECT_DOUBLE_EQ(h.mean_c, (11 * 100.0 + 105.0) / 12.0);
  EXPECT_DOUBLE_EQ(h.cx, 11.0);
  EXPECT_DOUBLE_EQ(h.cy, 6.5);
  EXPECT_DOUBLE_EQ(r.max_c, 105.0);
  EXPECT_DOUBLE_EQ(r.min_c, 20.0);
  EXPECT_GE(r.raw_score, 1.0);
  EXPECT_EQ(r.overlay.width, 64);
  EXPECT_EQ(r.overlay.rgb.size(), 64u * 48u * 3u);
}

TEST(InspectInfrared, NoRegionBelowThresholdOrArea) {
  GrayFrame f = frame(32, 32, 280);
  fill(f, 3, 3, 10, 10, 520);  // 80 C exactly: not hot
  fill(f, 20, 20, 2, 2, 700);  // 125 C, 4 pixels < 5
  const InfraredFinding r = analyze_infrared(f, config(), false);
  EXPECT_TRUE(r.regions.empty());
  EXPECT_LT(r.raw_score, 1.0);
  EXPECT_DOUBLE_EQ(r.max_c, 125.0);
  EXPECT_TRUE(r.overlay.rgb.empty());
  // Lowering min_area makes the small spot count; regions come hottest first.
  InfraredConfig c = config();
  c.min_area = 4;
  fill(f, 25, 2, 5, 1, 600);  // 100 C, 5 pixels
  const InfraredFinding r2 = analyze_infrared(f, c, false);
  ASSERT_EQ(r2.regions.size(), 2u);
  EXPECT_DOUBLE_EQ(r2.regions[0].max_c, 125.0);
  EXPECT_DOUBLE_EQ(r2.regions[1].max_c, 100.0);
}

TEST(InspectInfrared, NegativeSlopeCalibration) {
  // Some cameras map hotter to darker: T = -0.5 p + 200.
  GrayFrame f = frame(16, 16, 300);  // 50 C
  fill(f, 0, 0, 4, 4, 100);          // 150 C
  InfraredConfig c = config();
  c.a = -0.5;
  c.b = 200.0;
  const InfraredFinding r = analyze_infrared(f, c, false);
  ASSERT_EQ(r.regions.size(), 1u);
  EXPECT_EQ(r.regions[0].area, 16);
  EXPECT_DOUBLE_EQ(r.regions[0].max_c, 150.0);
}

TEST(InspectInfrared, GreyPngRoundTrip) {
  GrayFrame f = frame(7, 5, 0);
  for (size_t i = 0; i < f.pixels.size(); ++i) f.pixels[i] = static_cast<uint16_t>(i * 1800 + 3);
  const std::string png16 = encode_png(f.pixels.data(), 7, 5, 1, 16);
  const GrayFrame g =
      decode_gray_png(reinterpret_cast<const uint8_t*>(png16.data()), png16.size(), "t16");
  EXPECT_EQ(g.bit_depth, 16);
  EXPECT_EQ(g.pixels, f.pixels);
  std::vector<uint8_t> p8(35);
  for (size_t i = 0; i < p8.size(); ++i) p8[i] = static_cast<uint8_t>(i * 7);
  const std::string png8 = encode_png(p8.data(), 7, 5, 1, 8);
  const GrayFrame g8 =
      decode_gray_png(reinterpret_cast<const uint8_t*>(png8.data()), png8.size(), "t8");
  EXPECT_EQ(g8.bit_depth, 8);
  for (size_t i = 0; i < p8.size(); ++i) EXPECT_EQ(g8.pixels[i], p8[i]);
}

TEST(InspectInfrared, BadPngsAreRefused) {
  std::vector<uint8_t> rgb(4 * 4 * 3, 9);
  const std::string color = encode_png(rgb.data(), 4, 4, 3, 8);
  try {
    decode_gray_png(reinterpret_cast<const uint8_t*>(color.data()), color.size(), "colour.png");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unsupported);
    EXPECT_NE(std::string(e.what()).find("colour.png"), std::string::npos);
  }
  const std::string junk = "not a png at all";
  EXPECT_THROW(decode_gray_png(reinterpret_cast<const uint8_t*>(junk.data()), junk.size(), "j"),
               Error);
  std::vector<uint16_t> px(64, 500);
  std::string cut = encode_png(px.data(), 8, 8, 1, 16);
  cut.resize(cut.size() / 2);
  try {
    decode_gray_png(reinterpret_cast<const uint8_t*>(cut.data()), cut.size(), "cut.png");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
  }
  EXPECT_THROW(read_gray_png("/nonexistent/ir.png"), Error);
}

}  // namespace
}  // namespace mmfuse::inspect
