// bf16 and int8 (dynamic quantisation) against float32: the packed kernels on
// random matrices, the input quantiser on known values, and every encoder
// model of the fixtures against its own f32 outputs (cosine >= 0.995 per
// embedding / token / frame, the bar docs/quantization.md states).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "audio/audio_decode.h"
#include "core/packed_gemm.h"
#include "core/precision.h"
#include "mmfuse/embedder.h"
#include "models/bert.h"
#include "models/wav2vec2.h"
#include "test_util.h"

namespace mmfuse {
namespace {

using test::fixture;

double cosine(const float* a, const float* b, size_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < n; ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

// Smallest cosine between matching rows of two [rows, dim] arrays.
double min_row_cosine(const std::vector<float>& a, const std::vector<float>& b, size_t dim) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 1.0;
  for (size_t r = 0; r * dim < a.size() && r * dim < b.size(); ++r)
    worst = std::min(worst, cosine(a.data() + r * dim, b.data() + r * dim, dim));
  return worst;
}

TEST(Precision, ParsesNamesAndRejectsOthers) {
  EXPECT_EQ(parse_precision("f32", "x"), Precision::f32);
  EXPECT_EQ(parse_precision("FP32", "x"), Precision::f32);
  EXPECT_EQ(parse_precision("bf16", "x"), Precision::bf16);
  EXPECT_EQ(parse_precision("int8", "x"), Precision::int8);
  try {
    parse_precision("int4", "--dtype");
    FAIL() << "int4 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    EXPECT_NE(std::string(e.what()).find("--dtype"), std::string::npos);
  }
  EXPECT_EQ(supported_precision(Precision::int8), Precision::int8);
  EXPECT_EQ(supported_precision(Precision::f32), Precision::f32);
}

TEST(QuantizeRow, AsymmetricU8AsDynamicQuantizeLinear) {
  // [min(x, 0), max(x, 0)] = [-1, 2] over 255 levels: scale 3/255, zero 85.
  const float x[] = {-1.0f, 0.0f, 1.0f, 2.0f, 0.4f};
  uint8_t q[5];
  float scale = 0;
  int32_t zero = 0;
  kernels::quantize_row_u8(x, 5, 255, q, &scale, &zero);
  EXPECT_FLOAT_EQ(scale, 3.0f / 255.0f);
  EXPECT_EQ(zero, 85);
  EXPECT_EQ(q[0], 0);
  EXPECT_EQ(q[1], 85);
  EXPECT_EQ(q[2], 170);
  EXPECT_EQ(q[3], 255);
  EXPECT_EQ(q[4], 119);  // 0.4 / (3/255) = 34, + 85
  // Positive-only rows keep zero at 0 (0 must be exact, as in ONNX Runtime).
  const float pos[] = {0.5f, 1.0f};
  kernels::quantize_row_u8(pos, 2, 255, q, &scale, &zero);
  EXPECT_EQ(zero, 0);
  EXPECT_EQ(q[1], 255);
  // An all-zero row.
  const float zeros[] = {0.0f, 0.0f};
  kernels::quantize_row_u8(zeros, 2, 127, q, &scale, &zero);
  EXPECT_EQ(q[0], 0);
  EXPECT_EQ(zero, 0);
}

TEST(QuantizeRow, Bf16RoundsToNearestEven) {
  const float x[] = {1.0f, 1.00390625f /* 1 + 2^-8: tie -> even (1.0) */,
                     1.01171875f /* 1 + 3*2^-8: tie -> 1 + 2^-6 */, -2.5f};
  uint16_t y[4];
  kernels::round_row_bf16(x, 4, y);
  EXPECT_EQ(y[0], 0x3f80);
  EXPECT_EQ(y[1], 0x3f80);
  EXPECT_EQ(y[2], 0x3f82);
  EXPECT_EQ(y[3], 0xc020);
}

// The packed bf16 / int8 products against a float64 reference, for row counts
// on and off the packing shape (1, 7, 64, 150) and widths with a partial slice.
TEST(PackedLinearPrecision, MatchesFloat64Reference) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const auto& [in, out] : {std::pair{96, 200}, std::pair{768, 384}}) {
    std::vector<float> w(static_cast<size_t>(in) * out), bias(static_cast<size_t>(out));
    for (float& v : w) v = 0.05f * normal(rng);
    for (float& v : bias) v = 0.1f * normal(rng);
    for (Precision p : {Precision::bf16, Precision::int8}) {
      PackedLinear packed(w.data(), in, out, p);
      for (int rows : {1, 7, 64, 150}) {
        std::vector<float> x(static_cast<size_t>(rows) * in);
        for (float& v : x) v = normal(rng) + 0.3f;  // skewed, as after an activation
        std::vector<double> ref(static_cast<size_t>(rows) * out);
        for (int r = 0; r < rows; ++r)
          for (int o = 0; o < out; ++o) {
            double s = bias[static_cast<size_t>(o)];
            for (int k = 0; k < in; ++k)
              s += static_cast<double>(x[static_cast<size_t>(r) * in + k]) *
                   w[static_cast<size_t>(o) * in + k];
            ref[static_cast<size_t>(r) * out + o] = s;
          }
        PackedLinear::Input input;
        packed.prepare_input(rows, input);
        packed.convert_rows(x.data(), 0, rows, input);
        // Accumulate onto ones: y = 1 + x W^T + b.
        std::vector<float> y(static_cast<size_t>(rows) * out, 1.0f);
        for (int s = 0; s < packed.slices(); ++s)
          packed.multiply_converted(input, s, bias.data(), y.data(), out, true);
        std::vector<float> expected(ref.size());
        for (size_t i = 0; i < ref.size(); ++i) expected[i] = static_cast<float>(ref[i] + 1.0);
        const double worst = min_row_cosine(y, expected, static_cast<size_t>(out));
        EXPECT_GE(worst, p == Precision::bf16 ? 0.9999 : 0.999)
            << to_string(p) << " " << rows << "x" << in << "x" << out;
      }
    }
  }
}

// f32 vs `dtype` embeddings of one model through the public API.
void expect_embeddings_close(const std::string& model, const std::string& dtype,
                             bool images) {
  EmbedderOpenOptions f32;
  f32.threads = 2;
  EmbedderOpenOptions reduced = f32;
  reduced.dtype = dtype;
  auto a = Embedder::open(fixture(model).string(), f32);
  auto b = Embedder::open(fixture(model).string(), reduced);
  const std::vector<std::string> texts = {"a photo of a cat", "an industrial pump with a leak",
                                          "一张猫的照片", "two dogs running on the beach"};
  const auto ta = a->embed_texts(texts), tb = b->embed_texts(texts);
  for (size_t i = 0; i < texts.size(); ++i) {
    const double c = cosine(ta[i].data(), tb[i].data(), ta[i].size());
    std::printf("[ %s ] %s text %zu cosine %.6f\n", dtype.c_str(), model.c_str(), i, c);
    EXPECT_GE(c, 0.995) << model << " " << dtype << " text " << i;
  }
  if (!images) return;
  std::vector<std::string> paths;
  for (const char* f : {"img0_photo_640x480_rgb.jpg", "img1_portrait_480x640_rgb.png",
                        "img2_square_224x224_rgb.png", "img3_wide_100x37_rgb.png"})
    paths.push_back(fixture(std::string("images/") + f).string());
  const auto ia = a->embed_image_files(paths), ib = b->embed_image_files(paths);
  for (size_t i = 0; i < paths.size(); ++i) {
    const double c = cosine(ia[i].data(), ib[i].data(), ia[i].size());
    std::printf("[ %s ] %s image %zu cosine %.6f\n", dtype.c_str(), model.c_str(), i, c);
    EXPECT_GE(c, 0.995) << model << " " << dtype << " image " << i;
  }
}

class ReducedPrecision : public ::testing::TestWithParam<const char*> {};

TEST_P(ReducedPrecision, ClipEmbeddingsStayClose) {
  expect_embeddings_close("clip/models/clip-tiny-quickgelu-p32", GetParam(), true);
  expect_embeddings_close("clip/models/clip-tiny-gelu-p16", GetParam(), true);
}

TEST_P(ReducedPrecision, ChineseClipEmbeddingsStayClose) {
  expect_embeddings_close("chinese_clip/models/chinese-clip-tiny-p16", GetParam(), true);
}

TEST_P(ReducedPrecision, BertEmbeddingsStayClose) {
  expect_embeddings_close("bert/models/bert-tiny-chinese", GetParam(), false);
}

TEST_P(ReducedPrecision, Wav2Vec2LogitsStayClose) {
  const Precision p = parse_precision(GetParam(), "dtype");
  for (const char* name : {"w2v2-tiny-base-style", "w2v2-tiny-lv60-style"}) {
    auto a = Wav2Vec2ForCtc::load(fixture(std::string("wav2vec2/models/") + name));
    auto b = Wav2Vec2ForCtc::load(fixture(std::string("wav2vec2/models/") + name), p);
    AudioClip clip = decode_audio_file(fixture("wav2vec2/audio/a1_formant_2s.wav"));
    std::vector<float> x = clip.samples;
    wav2vec2_normalize(x);
    const std::vector<float> la = a->logits(test::pool(), x.data(), x.size());
    const std::vector<float> lb = b->logits(test::pool(), x.data(), x.size());
    const double c = min_row_cosine(la, lb, static_cast<size_t>(a->config().vocab_size));
    std::printf("[ %s ] %s logits min frame cosine %.6f\n", GetParam(), name, c);
    EXPECT_GE(c, 0.995) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, ReducedPrecision, ::testing::Values("bf16", "int8"));

}  // namespace
}  // namespace mmfuse
