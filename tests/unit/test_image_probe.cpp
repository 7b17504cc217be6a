// The header-only size probe the server uses against decompression bombs: it
// agrees with the decoders on every fixture image (JPEG, PNG, WebP, BMP), and
// refuses truncated headers and non-images without reading further.
#include <filesystem>
#include <fstream>
#include <iterator>

#include "mmfuse/error.h"
#include "test_util.h"
#include "vision/image.h"
#include "vision/image_probe.h"

namespace fs = std::filesystem;

namespace mmfuse::test {

namespace {
std::vector<uint8_t> bytes_of(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
}  // namespace

TEST(ImageProbe, AgreesWithTheDecoders) {
  size_t checked = 0;
  for (const char* dir : {"images", "images_extra"}) {
    for (const auto& e : fs::directory_iterator(fixture(dir))) {
      const std::string ext = e.path().extension().string();
      if (ext != ".png" && ext != ".jpg" && ext != ".jpeg" && ext != ".webp" && ext != ".bmp")
        continue;
      const auto bytes = bytes_of(e.path());
      Image image;
      try {
        image = decode_image_memory(bytes.data(), bytes.size(), e.path().string());
      } catch (const Error&) {
        continue;  // fixtures of unsupported kinds
      }
      const auto h = probe_image_header(bytes.data(), bytes.size());
      ASSERT_TRUE(h.has_value()) << e.path();
      EXPECT_EQ(h->width, image.width) << e.path();
      EXPECT_EQ(h->height, image.height) << e.path();
      ++checked;
    }
  }
  EXPECT_GE(checked, 15u);
}

TEST(ImageProbe, RefusesTruncatedHeadersAndNonImages) {
  const auto png = bytes_of(fixture("images/img2_square_224x224_rgb.png"));
  EXPECT_FALSE(probe_image_header(png.data(), 20).has_value());  // IHDR cut
  const auto jpeg = bytes_of(fixture("images/img0_photo_640x480_rgb.jpg"));
  EXPECT_FALSE(probe_image_header(jpeg.data(), 30).has_value());  // before the frame header
  const std::string text = "this is not an image at all";
  EXPECT_FALSE(
      probe_image_header(reinterpret_cast<const uint8_t*>(text.data()), text.size()).has_value());
  EXPECT_FALSE(probe_image_header(nullptr, 0).has_value());
  // A PNG header claiming 100000 x 100000 pixels is measured without decoding anything.
  std::vector<uint8_t> bomb(png.begin(), png.begin() + 33);
  for (int i : {16, 20}) {
    bomb[i] = 0;
    bomb[i + 1] = 0x01;
    bomb[i + 2] = 0x86;
    bomb[i + 3] = 0xA0;
  }
  const auto h = probe_image_header(bomb.data(), bomb.size());
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->width, 100000);
  EXPECT_EQ(h->height, 100000);
}

}  // namespace mmfuse::test
