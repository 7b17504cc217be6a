// Image decoding: PIL 9.4 Image.open(...).convert('RGB') parity on small
// fixtures of every supported kind (tests/fixtures/images_extra, made by its
// make_fixtures.py with PIL), and robustness on bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mmfuse/error.h"
#include "vision/image.h"

namespace fs = std::filesystem;
using mmfuse::DecodeLimits;
using mmfuse::Error;
using mmfuse::ErrorKind;
using mmfuse::Image;

namespace {

const fs::path kFixtures = MMFUSE_FIXTURES;
const fs::path kExtra = kFixtures / "images_extra";

std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  EXPECT_TRUE(in.good()) << p;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Decodes `bytes` in memory; returns the Error kind, or nullopt-like -1 on success.
int decode_kind(const std::vector<uint8_t>& bytes, const std::string& name,
                const DecodeLimits& limits = {}) {
  try {
    mmfuse::decode_image_memory(bytes.data(), bytes.size(), name, limits);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    return static_cast<int>(e.kind());
  }
  return -1;
}

uint32_t crc32_of(const uint8_t* p, size_t n, uint32_t crc = 0) {
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void put_be32(std::vector<uint8_t>& v, uint32_t x) {
  for (int i = 3; i >= 0; --i) v.push_back(static_cast<uint8_t>(x >> (8 * i)));
}

void png_chunk(std::vector<uint8_t>& v, const char* type, const std::vector<uint8_t>& data) {
  put_be32(v, static_cast<uint32_t>(data.size()));
  std::vector<uint8_t> td(type, type + 4);
  td.insert(td.end(), data.begin(), data.end());
  v.insert(v.end(), td.begin(), td.end());
  put_be32(v, crc32_of(td.data(), td.size()));
}

// A PNG with the given IHDR and no (or a bogus) IDAT.
std::vector<uint8_t> png_header_only(uint32_t w, uint32_t h) {
  std::vector<uint8_t> v = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<uint8_t> ihdr;
  put_be32(ihdr, w);
  put_be32(ihdr, h);
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});
  png_chunk(v, "IHDR", ihdr);
  png_chunk(v, "IDAT", {0x78, 0x9C, 0x03, 0x00});
  png_chunk(v, "IEND", {});
  return v;
}

void expect_kind(const std::vector<uint8_t>& bytes, const std::string& name, ErrorKind kind) {
  EXPECT_EQ(decode_kind(bytes, name), static_cast<int>(kind)) << name;
}

}  // namespace

TEST(ImageDecode, ExtraFixturesMatchPillow) {
  const auto expected = nlohmann::json::parse(std::ifstream(kExtra / "expected.json"));
  ASSERT_GE(expected.size(), 40u);
  for (const auto& e : expected) {
    const std::string file = e.at("file");
    SCOPED_TRACE(file + " (PIL mode " + e.at("pil_mode").get<std::string>() + ")");
    const Image img = mmfuse::decode_image_file(kExtra / file);
    EXPECT_EQ(img.width, e.at("width").get<int>());
    EXPECT_EQ(img.height, e.at("height").get<int>());
    const std::vector<uint8_t> want = read_bytes(kExtra / (file + ".rgb"));
    ASSERT_EQ(img.rgb.size(), want.size());
    size_t diff = 0;
    for (size_t i = 0; i < want.size(); ++i) diff += img.rgb[i] != want[i];
    EXPECT_EQ(diff, 0u) << "bytes differing from PIL's convert('RGB')";

    const std::vector<uint8_t> bytes = read_bytes(kExtra / file);
    const Image mem = mmfuse::decode_image_memory(bytes.data(), bytes.size(), file);
    EXPECT_EQ(mem.rgb, img.rgb);
  }
}

TEST(ImageDecode, ReferenceImagesHaveTheirSizes) {
  const auto images = nlohmann::json::parse(std::ifstream(kFixtures / "images" / "images.json"));
  ASSERT_EQ(images.size(), 8u);
  for (const auto& e : images) {
    const Image img =
        mmfuse::decode_image_file(kFixtures / "images" / e.at("file").get<std::string>());
    EXPECT_EQ(img.width, e.at("width").get<int>());
    EXPECT_EQ(img.height, e.at("height").get<int>());
    EXPECT_EQ(img.rgb.size(), static_cast<size_t>(img.width) * img.height * 3);
  }
  // The 1x1 image is (200, 30, 90).
  const Image px = mmfuse::decode_image_file(kFixtures / "images" / "img4_pixel_1x1_rgb.png");
  EXPECT_EQ(px.rgb, (std::vector<uint8_t>{200, 30, 90}));
}

TEST(ImageDecode, ExifOrientationIsNotApplied) {
  const Image img = mmfuse::decode_image_file(kExtra / "jpg_exif_orient6.jpg");
  EXPECT_EQ(img.width, 23);
  EXPECT_EQ(img.height, 17);
}

TEST(ImageDecode, FormatComesFromMagicBytesNotExtension) {
  const std::vector<uint8_t> png = read_bytes(kExtra / "png_la8.png");
  const fs::path tmp = fs::temp_directory_path() / "mmfuse_test_png_named.jpg";
  std::ofstream(tmp, std::ios::binary)
      .write(reinterpret_cast<const char*>(png.data()), static_cast<std::streamsize>(png.size()));
  const Image a = mmfuse::decode_image_file(tmp);
  const Image b = mmfuse::decode_image_file(kExtra / "png_la8.png");
  EXPECT_EQ(a.rgb, b.rgb);
  fs::remove(tmp);
}

TEST(ImageDecode, EmptyAndGarbageAreBadInput) {
  expect_kind({}, "empty.png", ErrorKind::bad_input);
  expect_kind({'h', 'e', 'l', 'l', 'o'}, "hello.jpg", ErrorKind::bad_input);
  expect_kind({0xFF, 0xD8, 0xFF}, "jpeg_magic_only.jpg", ErrorKind::bad_input);
  expect_kind({0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'}, "png_magic_only.png",
              ErrorKind::bad_input);
  expect_kind({'B', 'M'}, "bm_only.bmp", ErrorKind::bad_input);
  expect_kind({'R', 'I', 'F', 'F', 4, 0, 0, 0, 'W', 'E', 'B', 'P'}, "riff_only.webp",
              ErrorKind::bad_input);
  std::vector<uint8_t> noise(4096);
  uint32_t x = 12345;
  for (auto& b : noise) b = static_cast<uint8_t>((x = x * 1103515245u + 12345u) >> 24);
  expect_kind(noise, "noise.bin", ErrorKind::bad_input);
  noise[0] = 0xFF, noise[1] = 0xD8, noise[2] = 0xFF;
  expect_kind(noise, "noise_with_jpeg_magic.jpg", ErrorKind::bad_input);
}

TEST(ImageDecode, UnsupportedFormatsAreUnsupported) {
  expect_kind({'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0}, "x.gif", ErrorKind::unsupported);
  expect_kind({'I', 'I', '*', 0, 8, 0, 0, 0}, "x.tif", ErrorKind::unsupported);
  expect_kind(read_bytes(kExtra / "webp_animated.webp"), "webp_animated.webp",
              ErrorKind::unsupported);
}

TEST(ImageDecode, MissingFileIsNotFoundAndDirectoryIsBadInput) {
  try {
    mmfuse::decode_image_file(kExtra / "no_such_image.png");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::not_found);
    EXPECT_NE(std::string(e.what()).find("no_such_image.png"), std::string::npos);
  }
  try {
    mmfuse::decode_image_file(kExtra);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
  }
}

// Truncated copies fail exactly when PIL fails on them (PIL still decodes a
// file cut after its last row, e.g. inside the final zlib checksum or the
// padding of the last BMP row), and then give the same pixels.
TEST(ImageDecode, TruncatedFilesFailLikePillow) {
  const auto expected = nlohmann::json::parse(std::ifstream(kExtra / "expected.json"));
  int failures = 0;
  for (const auto& e : expected) {
    const std::string file = e.at("file");
    const std::vector<uint8_t> bytes = read_bytes(kExtra / file);
    const std::vector<uint8_t> full = read_bytes(kExtra / (file + ".rgb"));
    for (const auto& t : e.at("truncations")) {
      const size_t cut = t.at(0);
      const bool pil_ok = t.at(1);
      const std::vector<uint8_t> part(bytes.begin(),
                                      bytes.begin() + static_cast<std::ptrdiff_t>(cut));
      const std::string name = "cut_" + std::to_string(cut) + "_" + file;
      if (pil_ok) {
        try {
          const Image img = mmfuse::decode_image_memory(part.data(), part.size(), name);
          EXPECT_EQ(img.rgb, full) << name;
        } catch (const Error& err) {
          ADD_FAILURE() << name << ": PIL decodes it, we throw: " << err.what();
        }
      } else {
        expect_kind(part, name, ErrorKind::bad_input);
        ++failures;
      }
    }
  }
  EXPECT_GT(failures, 200);
  // Also through the file API, with the path in the message.
  const std::vector<uint8_t> jpg = read_bytes(kExtra / "jpg_420.jpg");
  const fs::path tmp = fs::temp_directory_path() / "mmfuse_test_truncated.jpg";
  std::ofstream(tmp, std::ios::binary)
      .write(reinterpret_cast<const char*>(jpg.data()),
             static_cast<std::streamsize>(jpg.size() - 10));
  try {
    mmfuse::decode_image_file(tmp);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    EXPECT_NE(std::string(e.what()).find(tmp.string()), std::string::npos) << e.what();
  }
  fs::remove(tmp);
}

TEST(ImageDecode, ZeroSizedImagesAreBadInput) {
  expect_kind(png_header_only(0, 10), "zero_w.png", ErrorKind::bad_input);
  expect_kind(png_header_only(10, 0), "zero_h.png", ErrorKind::bad_input);

  // BMP: patch the width of a valid file to 0.
  std::vector<uint8_t> bmp = read_bytes(kExtra / "bmp_24.bmp");
  for (int i = 18; i < 22; ++i) bmp[i] = 0;
  expect_kind(bmp, "zero_w.bmp", ErrorKind::bad_input);

  // JPEG: patch the SOF0 height to 0 (libjpeg: "Empty JPEG image").
  std::vector<uint8_t> jpg = read_bytes(kExtra / "jpg_444.jpg");
  for (size_t i = 2; i + 9 < jpg.size(); ++i) {
    if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) {
      jpg[i + 5] = 0;
      jpg[i + 6] = 0;
      break;
    }
  }
  expect_kind(jpg, "zero_h.jpg", ErrorKind::bad_input);
}

TEST(ImageDecode, PixelLimitIsEnforced) {
  DecodeLimits small;
  small.max_pixels = 23 * 17 - 1;
  for (const char* file : {"jpg_420.jpg", "png_rgb16.png", "webp_lossy.webp", "bmp_24.bmp"}) {
    const std::vector<uint8_t> bytes = read_bytes(kExtra / file);
    EXPECT_EQ(decode_kind(bytes, file, small), static_cast<int>(ErrorKind::bad_input)) << file;
    small.max_pixels = 23 * 17;
    EXPECT_EQ(decode_kind(bytes, file, small), -1) << file;
    small.max_pixels = 23 * 17 - 1;
  }
  // A tiny file claiming 100000 x 100000 pixels fails before any allocation.
  expect_kind(png_header_only(100000, 100000), "bomb.png", ErrorKind::bad_input);
  std::vector<uint8_t> bmp = read_bytes(kExtra / "bmp_24.bmp");
  bmp[21] = 0x7F;  // width 0x7Fxxxxxx
  expect_kind(bmp, "bomb.bmp", ErrorKind::bad_input);
}

TEST(ImageDecode, CorruptDataIsBadInput) {
  // PNG: damaged header chunk CRC.
  std::vector<uint8_t> png = read_bytes(kExtra / "png_rgb16.png");
  png[20] ^= 0x01;  // inside IHDR
  expect_kind(png, "bad_crc.png", ErrorKind::bad_input);
  // PNG: damaged zlib stream header (IDAT CRCs are not checked, as in PIL).
  png = read_bytes(kExtra / "png_rgb16.png");
  const std::string idat = "IDAT";
  const auto at = std::search(png.begin(), png.end(), idat.begin(), idat.end());
  ASSERT_NE(at, png.end());
  at[4] = 0x00;  // CMF: compression method 0 is invalid
  expect_kind(png, "bad_zlib.png", ErrorKind::bad_input);
  // JPEG: EOI right after SOI.
  std::vector<uint8_t> jpg = read_bytes(kExtra / "jpg_420.jpg");
  jpg[3] = 0xD9;
  expect_kind(jpg, "bad_marker.jpg", ErrorKind::bad_input);
  // BMP: unknown header size.
  std::vector<uint8_t> bmp = read_bytes(kExtra / "bmp_24.bmp");
  bmp[14] = 7;
  expect_kind(bmp, "bad_header.bmp", ErrorKind::bad_input);
}

// Random byte damage must never crash or leak (run under ASan/UBSan): every
// attempt either decodes or throws mmfuse::Error.
TEST(ImageDecode, RandomDamageNeverCrashes) {
  const auto expected = nlohmann::json::parse(std::ifstream(kExtra / "expected.json"));
  uint64_t state = 0x9E3779B97F4A7C15ull;
  auto next = [&]() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  int decoded = 0, failed = 0;
  for (const auto& e : expected) {
    const std::vector<uint8_t> bytes = read_bytes(kExtra / e.at("file").get<std::string>());
    for (int iter = 0; iter < 40; ++iter) {
      std::vector<uint8_t> m = bytes;
      const int edits = 1 + static_cast<int>(next() % 4);
      for (int k = 0; k < edits; ++k) m[next() % m.size()] = static_cast<uint8_t>(next());
      if (iter % 5 == 0) m.resize(1 + next() % m.size());
      try {
        const Image img = mmfuse::decode_image_memory(m.data(), m.size(), "damaged");
        ASSERT_EQ(img.rgb.size(), static_cast<size_t>(img.width) * img.height * 3);
        ++decoded;
      } catch (const Error&) {
        ++failed;
      }
    }
  }
  EXPECT_GT(decoded + failed, 0);
}
