// PIL resize and CLIP preprocessing parity: pixel_values of the reference
// images (HF CLIPImageProcessor on PIL 9.4), PIL Image.resize() hashes for
// pseudo-random inputs, hand-checked cases and preprocessor_config.json parsing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mmfuse/error.h"
#include "vision/image.h"
#include "vision/image_processor.h"
#include "vision/pil_resize.h"

namespace fs = std::filesystem;
using mmfuse::Error;
using mmfuse::ErrorKind;
using mmfuse::Image;
using mmfuse::ImageProcessorConfig;

namespace {

const fs::path kFixtures = MMFUSE_FIXTURES;

// Minimal test-local safetensors reader: 8-byte little-endian header length,
// JSON header, raw data.
struct Tensor {
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

std::map<std::string, Tensor> read_safetensors(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  uint8_t len_bytes[8];
  in.read(reinterpret_cast<char*>(len_bytes), 8);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len_bytes[i];
  std::string header(n, '\0');
  in.read(header.data(), static_cast<std::streamsize>(n));
  const std::vector<uint8_t> data{std::istreambuf_iterator<char>(in),
                                  std::istreambuf_iterator<char>()};
  std::map<std::string, Tensor> out;
  const nlohmann::json index = nlohmann::json::parse(header);
  for (const auto& [name, info] : index.items()) {
    if (name == "__metadata__") continue;
    Tensor t;
    t.dtype = info.at("dtype");
    t.shape = info.at("shape").get<std::vector<int64_t>>();
    const size_t a = info.at("data_offsets")[0], b = info.at("data_offsets")[1];
    t.bytes.assign(data.begin() + static_cast<std::ptrdiff_t>(a),
                   data.begin() + static_cast<std::ptrdiff_t>(b));
    out.emplace(name, std::move(t));
  }
  return out;
}

std::vector<float> as_f32(const Tensor& t) {
  EXPECT_EQ(t.dtype, "F32");
  std::vector<float> v(t.bytes.size() / 4);
  std::memcpy(v.data(), t.bytes.data(), v.size() * 4);
  return v;
}

std::vector<float> preprocess(const Image& img, const ImageProcessorConfig& cfg) {
  std::vector<float> out(static_cast<size_t>(cfg.out_height()) * cfg.out_width() * 3);
  mmfuse::preprocess_image(img, cfg, out.data());
  return out;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  }
  return m;
}

// splitmix64 byte stream and FNV-1a 64, as in images_extra/make_fixtures.py.
std::vector<uint8_t> splitmix_bytes(uint64_t seed, size_t n) {
  std::vector<uint8_t> out(n);
  uint64_t s = seed;
  for (size_t i = 0; i < n; i += 8) {
    s += 0x9E3779B97F4A7C15ull;
    uint64_t z = s;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    for (size_t k = 0; k < 8 && i + k < n; ++k) out[i + k] = static_cast<uint8_t>(z >> (8 * k));
  }
  return out;
}

uint64_t fnv1a64(const std::vector<uint8_t>& v) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (uint8_t b : v) h = (h ^ b) * 0x100000001B3ull;
  return h;
}

Image make_image(int w, int h, std::vector<uint8_t> rgb) {
  Image img;
  img.width = w;
  img.height = h;
  img.rgb = std::move(rgb);
  return img;
}

fs::path write_temp_json(const std::string& name, const std::string& text) {
  const fs::path p = fs::temp_directory_path() / ("mmfuse_test_" + name + ".json");
  std::ofstream(p) << text;
  return p;
}

}  // namespace

// ---------------------------------------------------------------- reference parity

TEST(ImagePreprocess, PixelValuesMatchReference) {
  const auto ref = read_safetensors(kFixtures / "clip/preprocess/pixel_values.safetensors");
  const auto meta =
      nlohmann::json::parse(std::ifstream(kFixtures / "clip/preprocess/pixel_values.json"));
  for (const char* model :
       {"clip-tiny-gelu-p16", "clip-tiny-quickgelu-p32", "clip-tiny-quickgelu-p32-f16"}) {
    const ImageProcessorConfig cfg = ImageProcessorConfig::from_file(
        kFixtures / "clip/models" / model / "preprocessor_config.json");
    ASSERT_EQ(cfg.out_height(), 224);
    ASSERT_EQ(cfg.out_width(), 224);
    for (const auto& im : meta.at("images")) {
      const std::string file = im.at("file");
      const Image img = mmfuse::decode_image_file(kFixtures / "images" / file);
      const std::vector<float> got = preprocess(img, cfg);
      const std::vector<float> want = as_f32(ref.at(im.at("tensor").get<std::string>()));
      const double err = max_abs_diff(got, want);
      std::printf("[pixel_values] %-28s %-34s max abs %.3g\n", model, file.c_str(), err);
      EXPECT_LE(err, 1e-6) << model << " " << file;
    }
  }
}

TEST(ImageDecode, JpegMatchesPillowDecode) {
  const auto ref = read_safetensors(kFixtures / "clip/preprocess/pixel_values.safetensors");
  const Tensor& t = ref.at("decoded_rgb_uint8_0");
  ASSERT_EQ(t.dtype, "U8");
  ASSERT_EQ(t.shape, (std::vector<int64_t>{480, 640, 3}));
  const Image img = mmfuse::decode_image_file(kFixtures / "images/img0_photo_640x480_rgb.jpg");
  ASSERT_EQ(img.width, 640);
  ASSERT_EQ(img.height, 480);
  EXPECT_TRUE(img.rgb == t.bytes) << "JPEG decode differs from PIL's";
}

// Chinese-CLIP: size {height, width} with do_center_crop false is a direct,
// aspect-distorting resize. The reference lives in the chinese_clip/ fixtures,
// which are part of the repository: a missing file is a broken checkout.
TEST(ImagePreprocess, ChineseClipDirectResizeMatchesReference) {
  const fs::path folder = kFixtures / "chinese_clip";
  const fs::path outputs = folder / "outputs/chinese-clip-tiny-p16/outputs.safetensors";
  const fs::path config = folder / "models/chinese-clip-tiny-p16/preprocessor_config.json";
  ASSERT_TRUE(fs::exists(outputs)) << outputs << " is missing (a broken checkout?)";
  ASSERT_TRUE(fs::exists(config)) << config << " is missing (a broken checkout?)";
  const ImageProcessorConfig cfg = ImageProcessorConfig::from_file(config);
  EXPECT_FALSE(cfg.do_center_crop);
  EXPECT_EQ(cfg.resize_h, 224);
  EXPECT_EQ(cfg.resize_w, 224);
  const auto ref = read_safetensors(outputs);
  const std::vector<float> all = as_f32(ref.at("pixel_values"));
  const size_t per = 3 * 224 * 224;
  ASSERT_EQ(all.size(), 3 * per);
  const char* files[] = {"img0_photo_640x480_rgb.jpg", "img1_portrait_480x640_rgb.png",
                         "img3_wide_100x37_rgb.png"};
  for (size_t i = 0; i < 3; ++i) {
    const std::vector<float> got =
        preprocess(mmfuse::decode_image_file(kFixtures / "images" / files[i]), cfg);
    const std::vector<float> want(all.begin() + static_cast<std::ptrdiff_t>(i * per),
                                  all.begin() + static_cast<std::ptrdiff_t>((i + 1) * per));
    const double err = max_abs_diff(got, want);
    std::printf("[pixel_values] chinese-clip %-34s max abs %.3g\n", files[i], err);
    EXPECT_LE(err, 1e-6) << files[i];
  }
}

// ---------------------------------------------------------------- PIL resize

TEST(PilResize, MatchesPillowOnRandomSizes) {
  const auto cases =
      nlohmann::json::parse(std::ifstream(kFixtures / "images_extra/resize_cases.json"));
  ASSERT_GE(cases.size(), 150u);
  std::map<int, int> per_filter;
  for (const auto& c : cases) {
    const int w = c.at("w"), h = c.at("h"), ow = c.at("out_w"), oh = c.at("out_h");
    const int filter = c.at("filter"), kind = c.at("kind");
    std::vector<uint8_t> px =
        splitmix_bytes(c.at("seed").get<uint64_t>(), static_cast<size_t>(w) * h * 3);
    if (kind == 1) {
      for (auto& b : px) b = (b & 1) ? 255 : 0;
    }
    const Image out = mmfuse::pil_resize(make_image(w, h, std::move(px)), ow, oh, filter);
    ASSERT_EQ(out.width, ow);
    ASSERT_EQ(out.height, oh);
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a64(out.rgb)));
    EXPECT_EQ(std::string(hex), c.at("fnv1a64").get<std::string>())
        << w << "x" << h << " -> " << ow << "x" << oh << " filter " << filter << " kind " << kind;
    ++per_filter[filter];
  }
  for (int f : {1, 2, 3, 4, 5}) EXPECT_GT(per_filter[f], 0) << "filter " << f;
}

TEST(PilResize, SameSizeIsIdentity) {
  std::vector<uint8_t> px = splitmix_bytes(7, 13 * 9 * 3);
  const Image in = make_image(13, 9, px);
  for (int f : {1, 2, 3, 4, 5}) EXPECT_EQ(mmfuse::pil_resize(in, 13, 9, f).rgb, px);
}

TEST(PilResize, OnePixelUpscaleIsConstant) {
  const Image in = make_image(1, 1, {200, 30, 90});
  for (int f : {2, 3}) {
    const Image out = mmfuse::pil_resize(in, 224, 224, f);
    ASSERT_EQ(out.rgb.size(), 224u * 224u * 3u);
    for (size_t i = 0; i < out.rgb.size(); i += 3) {
      ASSERT_EQ(out.rgb[i], 200);
      ASSERT_EQ(out.rgb[i + 1], 30);
      ASSERT_EQ(out.rgb[i + 2], 90);
    }
  }
}

TEST(PilResize, ConstantImageStaysConstant) {
  const int sizes[][4] = {{37, 21, 224, 224}, {640, 480, 298, 224}, {5, 300, 17, 3}, {2, 2, 1, 1}};
  for (const auto& s : sizes) {
    for (int f : {1, 2, 3, 4, 5}) {
      std::vector<uint8_t> px(static_cast<size_t>(s[0]) * s[1] * 3);
      for (size_t i = 0; i < px.size(); i += 3) px[i] = 255, px[i + 1] = 0, px[i + 2] = 77;
      const Image out = mmfuse::pil_resize(make_image(s[0], s[1], px), s[2], s[3], f);
      for (size_t i = 0; i < out.rgb.size(); i += 3) {
        ASSERT_EQ(out.rgb[i], 255) << "filter " << f;
        ASSERT_EQ(out.rgb[i + 1], 0) << "filter " << f;
        ASSERT_EQ(out.rgb[i + 2], 77) << "filter " << f;
      }
    }
  }
}

TEST(PilResize, RejectsUnsupportedFilterAndBadSizes) {
  const Image in = make_image(2, 2, std::vector<uint8_t>(12, 9));
  for (int f : {0, 6, -1}) {
    try {
      mmfuse::pil_resize(in, 4, 4, f);
      FAIL() << "filter " << f;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::unsupported);
    }
  }
  EXPECT_THROW(mmfuse::pil_resize(in, 0, 4, 3), Error);
  EXPECT_THROW(mmfuse::pil_resize(make_image(2, 2, {1, 2, 3}), 4, 4, 3), Error);
}

// ---------------------------------------------------------------- pipeline details

TEST(ImagePreprocess, RescaleAndNormalizeArithmetic) {
  // One pixel, no resize, 1x1 crop: the value is float32(u8 * (1/255 in float64)),
  // then (x - mean) / std in float32.
  ImageProcessorConfig cfg;
  cfg.do_resize = false;
  cfg.crop_h = cfg.crop_w = 1;
  const Image img = make_image(1, 1, {0, 128, 255});
  const std::vector<float> out = preprocess(img, cfg);
  const uint8_t u[3] = {0, 128, 255};
  for (int c = 0; c < 3; ++c) {
    const float x = static_cast<float>(u[c] * (1.0 / 255.0));
    EXPECT_EQ(out[c], (x - cfg.mean[c]) / cfg.std[c]);
  }
  cfg.do_normalize = false;
  EXPECT_EQ(preprocess(img, cfg)[1], static_cast<float>(128 * (1.0 / 255.0)));
  cfg.do_rescale = false;
  EXPECT_EQ(preprocess(img, cfg)[2], 255.0f);
  cfg.do_normalize = true;
  EXPECT_EQ(preprocess(img, cfg)[0], (0.0f - cfg.mean[0]) / cfg.std[0]);
}

TEST(ImagePreprocess, CenterCropUsesFloorAndZeroPadding) {
  ImageProcessorConfig cfg;
  cfg.do_resize = false;
  cfg.do_rescale = cfg.do_normalize = false;
  // 5x4 image, values = index; crop 2x2: top = (4-2)//2 = 1, left = (5-2)//2 = 1.
  std::vector<uint8_t> px(5 * 4 * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i);
  cfg.crop_h = cfg.crop_w = 2;
  std::vector<float> out = preprocess(make_image(5, 4, px), cfg);
  EXPECT_EQ(out[0], static_cast<float>((1 * 5 + 1) * 3));          // R at (0,0) = src (1,1)
  EXPECT_EQ(out[4 + 3], static_cast<float>((2 * 5 + 2) * 3 + 1));  // G at (1,1) = src (2,2)
  // 3x2 image, crop 4x4: HF pads to 4x4 with the image at row ceil(2/2)=1, column ceil(1/2)=1.
  cfg.crop_h = cfg.crop_w = 4;
  std::vector<uint8_t> small(3 * 2 * 3, 100);
  out = preprocess(make_image(3, 2, small), cfg);
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 4; ++x) {
      const bool inside = y >= 1 && y < 3 && x >= 1 && x < 4;
      EXPECT_EQ(out[static_cast<size_t>(y * 4 + x)], inside ? 100.0f : 0.0f) << y << "," << x;
    }
  }
}

TEST(ImagePreprocess, ShortestEdgeResizeSizes) {
  // The resized long side is int(224 * long / short); the crop then takes the centre.
  ImageProcessorConfig cfg;
  cfg.do_center_crop = false;
  cfg.do_resize = true;
  cfg.resize_h = cfg.resize_w = 0;
  EXPECT_EQ(cfg.out_height(), 0);  // depends on the image: not a fixed-size config
  EXPECT_THROW(preprocess(make_image(1, 1, {1, 2, 3}), cfg), Error);

  ImageProcessorConfig direct;
  direct.do_center_crop = false;
  direct.resize_h = 30;
  direct.resize_w = 50;
  EXPECT_EQ(direct.out_height(), 30);
  EXPECT_EQ(direct.out_width(), 50);
  std::vector<uint8_t> px = splitmix_bytes(3, 100 * 37 * 3);
  const Image img = make_image(100, 37, px);
  const Image resized = mmfuse::pil_resize(img, 50, 30, 3);
  direct.do_rescale = direct.do_normalize = false;
  const std::vector<float> out = preprocess(img, direct);
  for (size_t c = 0; c < 3; ++c) {
    for (size_t i = 0; i < 30 * 50; ++i) {
      ASSERT_EQ(out[c * 1500 + i], static_cast<float>(resized.rgb[i * 3 + c]));
    }
  }
}

// ---------------------------------------------------------------- config parsing

TEST(ImageProcessorConfig, ParsesNewAndLegacyFormats) {
  const ImageProcessorConfig modern = ImageProcessorConfig::from_file(
      kFixtures / "clip/models/clip-tiny-gelu-p16/preprocessor_config.json");
  const ImageProcessorConfig legacy = ImageProcessorConfig::from_file(
      kFixtures / "clip/models/clip-tiny-quickgelu-p32/preprocessor_config.json");
  for (const ImageProcessorConfig* c : {&modern, &legacy}) {
    EXPECT_TRUE(c->do_resize);
    EXPECT_EQ(c->shortest_edge, 224);
    EXPECT_EQ(c->resize_h, 0);
    EXPECT_EQ(c->resample, 3);
    EXPECT_TRUE(c->do_center_crop);
    EXPECT_EQ(c->crop_h, 224);
    EXPECT_EQ(c->crop_w, 224);
    EXPECT_TRUE(c->do_rescale);
    EXPECT_EQ(c->rescale_factor, 1.0 / 255.0);
    EXPECT_TRUE(c->do_normalize);
    EXPECT_EQ(c->mean[0], 0.48145466f);
    EXPECT_EQ(c->std[2], 0.27577711f);
    EXPECT_EQ(c->out_height(), 224);
  }
}

TEST(ImageProcessorConfig, DefaultsAndVariants) {
  const ImageProcessorConfig empty =
      ImageProcessorConfig::from_file(write_temp_json("empty", "{}"));
  const ImageProcessorConfig def;
  EXPECT_EQ(empty.shortest_edge, def.shortest_edge);
  EXPECT_EQ(empty.crop_h, 224);
  EXPECT_EQ(empty.resample, 3);
  EXPECT_EQ(empty.rescale_factor, 1.0 / 255.0);
  EXPECT_EQ(empty.mean[1], 0.4578275f);

  const ImageProcessorConfig cn = ImageProcessorConfig::from_file(write_temp_json(
      "cn", R"({"size": {"height": 224, "width": 224}, "do_center_crop": false, "crop_size": 224,
               "resample": 3, "image_mean": [0.5, 0.5, 0.5], "image_std": 0.5})"));
  EXPECT_EQ(cn.resize_h, 224);
  EXPECT_EQ(cn.resize_w, 224);
  EXPECT_FALSE(cn.do_center_crop);
  EXPECT_EQ(cn.out_height(), 224);
  EXPECT_EQ(cn.std[2], 0.5f);

  const ImageProcessorConfig odd = ImageProcessorConfig::from_file(write_temp_json(
      "odd", R"({"size": {"shortest_edge": 256}, "crop_size": {"height": 240, "width": 200},
                "resample": 2, "do_rescale": false, "rescale_factor": 0.5, "do_normalize": false,
                "do_convert_rgb": null})"));
  EXPECT_EQ(odd.shortest_edge, 256);
  EXPECT_EQ(odd.crop_h, 240);
  EXPECT_EQ(odd.crop_w, 200);
  EXPECT_EQ(odd.resample, 2);
  EXPECT_FALSE(odd.do_rescale);
  EXPECT_EQ(odd.rescale_factor, 0.5);
  EXPECT_TRUE(odd.do_convert_rgb);
  EXPECT_EQ(odd.out_height(), 240);
  EXPECT_EQ(odd.out_width(), 200);
}

TEST(ImageProcessorConfig, ErrorsNameFileAndField) {
  const auto expect_error = [](const std::string& name, const std::string& text, ErrorKind kind,
                               const std::string& field) {
    const fs::path p = write_temp_json(name, text);
    try {
      ImageProcessorConfig::from_file(p);
      FAIL() << name;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), kind) << name << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
    fs::remove(p);
  };
  expect_error("badjson", "{\"size\": ", ErrorKind::bad_input, "JSON");
  expect_error("resample0", R"({"resample": 0})", ErrorKind::unsupported, "resample");
  expect_error("resample_str", R"({"resample": "bicubic"})", ErrorKind::bad_input, "resample");
  expect_error("size_neg", R"({"size": -3})", ErrorKind::bad_input, "size");
  expect_error("size_longest", R"({"size": {"longest_edge": 224}})", ErrorKind::unsupported,
               "size");
  expect_error("crop_bad", R"({"crop_size": {"height": 224}})", ErrorKind::unsupported,
               "crop_size");
  expect_error("mean_bad", R"({"image_mean": [0.5, 0.5]})", ErrorKind::bad_input, "image_mean");
  expect_error("flag_bad", R"({"do_resize": "yes"})", ErrorKind::bad_input, "do_resize");
  expect_error("variable", R"({"do_center_crop": false})", ErrorKind::unsupported, "output size");
  try {
    ImageProcessorConfig::from_file(kFixtures / "no_such_preprocessor_config.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::not_found);
  }
}
