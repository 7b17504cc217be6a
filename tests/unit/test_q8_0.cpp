// 8-bit decoder weights (core/q8_0.h, `--dtype int8` on decoders): the block
// quantiser, the dot-product kernels of every instruction set against an exact
// integer reference, typed_linear on q8_0 weights against the float product,
// and a small random Llama in int8 against its own f32 (logits cosine >= 0.995
// at every step, the same greedy tokens where f32's choice is not a near tie).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <unistd.h>

#include "core/q8_0.h"
#include "core/typed_linear.h"
#include "io/model_folder.h"
#include "mmfuse/error.h"
#include "models/llama.h"
#include "test_util.h"

namespace mmfuse {
namespace {

std::vector<float> q8_random_matrix(size_t n, float std, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, std);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

std::vector<uint8_t> quantize_for_test(const std::vector<float>& w, size_t out, size_t in) {
  std::vector<uint8_t> q(out * q8_0_row_bytes(in));
  quantize_q8_0_rows(WeightType::f32, w.data(), 0, out, in, q.data());
  return q;
}

TEST(Q8_0, BlocksReconstructWithinHalfAStep) {
  std::mt19937 rng(3);
  const size_t out = 5, in = 96;
  std::vector<float> w = q8_random_matrix(out * in, 0.05f, rng);
  w[7] = 0.0f;
  for (size_t i = 32; i < 64; ++i) w[i] = 0.0f;  // an all-zero block: scale 0, values 0
  const std::vector<uint8_t> q = quantize_for_test(w, out, in);
  std::vector<float> back(in);
  for (size_t o = 0; o < out; ++o) {
    kernels::dequantize_q8_0_row(q.data() + o * q8_0_row_bytes(in), in, back.data());
    for (size_t b = 0; b < in / kQ8Block; ++b) {
      float amax = 0.0f;
      for (size_t i = 0; i < kQ8Block; ++i) amax = std::max(amax, std::fabs(w[o * in + b * 32 + i]));
      for (size_t i = 0; i < kQ8Block; ++i) {
        const size_t k = b * kQ8Block + i;
        // half a step of the float16-rounded scale (which is within 2^-11 of amax / 127)
        EXPECT_LE(std::fabs(back[k] - w[o * in + k]), 0.5f * amax / 127.0f * 1.001f + 1e-9f)
            << o << " " << k;
      }
    }
  }
  for (size_t i = 32; i < 64; ++i) {
    kernels::dequantize_q8_0_row(q.data(), in, back.data());
    EXPECT_EQ(back[i], 0.0f);
  }
  EXPECT_EQ(q8_0_row_bytes(2048), 2048u + 128u);  // 1.0625 bytes per weight
}

// Exact reference from the quantised values: integer block sums, scaled in double.
std::vector<double> q8_exact_dot(const std::vector<uint8_t>& q, size_t out, const Q8Input& x) {
  const size_t in = x.in, blocks = in / kQ8Block;
  std::vector<double> y(x.rows * out);
  std::vector<float> dw(in);
  for (size_t o = 0; o < out; ++o) {
    const uint8_t* row = q.data() + o * q8_0_row_bytes(in);
    const auto* qw = reinterpret_cast<const int8_t*>(row);
    // the scale of block b is the dequantised value of a weight with q = 1
    std::vector<uint8_t> unit(q8_0_row_bytes(in));
    std::memcpy(unit.data(), row, unit.size());
    for (size_t i = 0; i < in; ++i) unit[i] = 1;
    kernels::dequantize_q8_0_row(unit.data(), in, dw.data());
    for (size_t r = 0; r < x.rows; ++r) {
      double sum = 0.0;
      for (size_t b = 0; b < blocks; ++b) {
        int64_t s = 0;
        for (size_t i = b * kQ8Block; i < (b + 1) * kQ8Block; ++i) s += qw[i] * x.q[r * in + i];
        sum += static_cast<double>(s) * dw[b * kQ8Block] * x.d[r * blocks + b];
      }
      y[r * out + o] = sum;
    }
  }
  return y;
}

std::vector<uint8_t> tiles_for_test(const std::vector<uint8_t>& rows, size_t out, size_t in) {
  std::vector<uint8_t> t(q8_0_tiles_bytes(out, in));
  pack_q8_0_tiles(rows.data(), out, in, t.data());
  return t;
}

TEST(Q8_0, TilesHoldTheRowsValues) {
  std::mt19937 rng(4);
  const size_t out = 21, in = 96;  // a partial second tile
  const std::vector<float> w = q8_random_matrix(out * in, 0.05f, rng);
  const std::vector<uint8_t> rows = quantize_for_test(w, out, in);
  const std::vector<uint8_t> tiles = tiles_for_test(rows, out, in);
  EXPECT_EQ(tiles.size(), 32 * q8_0_row_bytes(in));
  std::vector<uint8_t> direct(tiles.size());
  quantize_q8_0_tiles(WeightType::f32, w.data(), out, in, 0, 2, direct.data());
  EXPECT_EQ(direct, tiles);
  std::vector<float> want(in), got(in);
  for (size_t o = 0; o < out; ++o) {
    kernels::dequantize_q8_0_row(rows.data() + o * q8_0_row_bytes(in), in, want.data());
    kernels::dequantize_q8_0_tiled_row(tiles.data(), o, in, got.data());
    ASSERT_EQ(got, want) << o;
  }
}

TEST(Q8_0, EveryKernelMatchesTheExactBlockSums) {
  std::mt19937 rng(5);
  // 2048 + 96 inputs: 67 blocks; 37 outputs: two full tiles and a partial
  // one, 21: a full tile and a partial one (decoding takes tiles in pairs).
  for (size_t in : {size_t{2144}, size_t{64}, size_t{32}}) {
    const size_t out = in == 64 ? 21 : 37;
    const std::vector<uint8_t> q = quantize_for_test(q8_random_matrix(out * in, 0.05f, rng), out, in);
    const std::vector<uint8_t> tiles = tiles_for_test(q, out, in);
    for (size_t rows : {1u, 3u, 5u, 10u}) {
      const std::vector<float> xf = q8_random_matrix(rows * in, 1.0f, rng);
      Q8Input x;
      x.quantize(xf.data(), rows, in, in);
      const std::vector<double> want = q8_exact_dot(q, out, x);
      double scale = 1e-6;
      for (double v : want) scale = std::max(scale, std::fabs(v));
      int ran = 0;
      for (const char* isa : {"scalar", "avx2", "avx512_vnni"}) {
        std::vector<float> y(rows * out);
        if (!kernels::q8_0_dot_rows_with(isa, tiles.data(), out, x, y.data(), out)) continue;
        ++ran;
        for (size_t i = 0; i < y.size(); ++i)
          ASSERT_NEAR(y[i], want[i], 1e-5 * scale) << isa << " in " << in << " rows " << rows;
      }
      EXPECT_GE(ran, 1);
    }
  }
  std::printf("q8_0 kernel on this CPU: %s\n", kernels::q8_0_kernel_isa());
}

TEST(Q8_0, TypedLinearIsCloseToTheFloatProduct) {
  std::mt19937 rng(9);
  const size_t in = 512, out = 70;
  const std::vector<float> w = q8_random_matrix(out * in, 0.05f, rng);
  const std::vector<float> bias = q8_random_matrix(out, 0.1f, rng);
  const std::vector<uint8_t> q = tiles_for_test(quantize_for_test(w, out, in), out, in);
  const TypedLinear lin{WeightType::q8_0, q.data(), bias.data(), static_cast<int>(in),
                        static_cast<int>(out)};
  EXPECT_EQ(lin.bytes(), out * (in + in / 16));
  for (size_t rows : {1u, 4u, 9u, 33u}) {  // the streaming path and the GEMM path
    const std::vector<float> x = q8_random_matrix(rows * in, 1.0f, rng);
    std::vector<float> y(rows * out), want(rows * out);
    typed_linear(test::pool(), x.data(), rows, lin, y.data());
    for (size_t r = 0; r < rows; ++r)
      for (size_t o = 0; o < out; ++o) {
        double s = bias[o];
        for (size_t k = 0; k < in; ++k) s += static_cast<double>(x[r * in + k]) * w[o * in + k];
        want[r * out + o] = static_cast<float>(s);
      }
    // 512 products of 8-bit weights and 8-bit inputs (every path quantises
    // both): within 3 % of the output scale
    EXPECT_GT(test::cosine(y.data(), want.data(), y.size()), 0.9995) << rows << " rows";
    EXPECT_LT(test::max_abs_diff(y, want), 0.04) << rows << " rows";
  }
}

// ---- a small random Llama, written to a temporary folder ----

void write_q8_test_safetensors(const std::filesystem::path& path,
                       const std::vector<std::pair<std::string, std::vector<int64_t>>>& shapes,
                       std::mt19937& rng) {
  nlohmann::json header = nlohmann::json::object();
  std::vector<float> data;
  for (const auto& [name, shape] : shapes) {
    size_t n = 1;
    for (int64_t s : shape) n *= static_cast<size_t>(s);
    const size_t begin = data.size() * 4;
    const bool norm = shape.size() == 1;
    std::vector<float> v = q8_random_matrix(n, norm ? 0.1f : 0.08f, rng);
    for (float& x : v) x += norm ? 1.0f : 0.0f;
    data.insert(data.end(), v.begin(), v.end());
    header[name] = {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {begin, data.size() * 4}}};
  }
  std::string text = header.dump();
  while ((text.size() + 8) % 8 != 0) text += ' ';
  std::ofstream out(path, std::ios::binary);
  const uint64_t len = text.size();
  out.write(reinterpret_cast<const char*>(&len), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size() * 4));
}

class Q8Llama : public ::testing::Test {
 protected:
  static constexpr int kHidden = 128, kInter = 256, kVocab = 384, kLayers = 2;
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mmfuse_q8_llama_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    std::mt19937 rng(21);
    std::vector<std::pair<std::string, std::vector<int64_t>>> shapes = {
        {"model.embed_tokens.weight", {kVocab, kHidden}},
        {"model.norm.weight", {kHidden}},
        {"lm_head.weight", {kVocab, kHidden}}};
    for (int i = 0; i < kLayers; ++i) {
      const std::string p = "model.layers." + std::to_string(i) + ".";
      shapes.push_back({p + "input_layernorm.weight", {kHidden}});
      shapes.push_back({p + "post_attention_layernorm.weight", {kHidden}});
      for (const char* m : {"q_proj", "o_proj"})
        shapes.push_back({p + "self_attn." + m + ".weight", {kHidden, kHidden}});
      for (const char* m : {"k_proj", "v_proj"})  // 2 KV heads of 4 (GQA)
        shapes.push_back({p + "self_attn." + m + ".weight", {kHidden / 2, kHidden}});
      shapes.push_back({p + "mlp.gate_proj.weight", {kInter, kHidden}});
      shapes.push_back({p + "mlp.up_proj.weight", {kInter, kHidden}});
      shapes.push_back({p + "mlp.down_proj.weight", {kHidden, kInter}});
    }
    write_q8_test_safetensors(dir_ / "model.safetensors", shapes, rng);
    config_ = {{"hidden_size", kHidden},   {"intermediate_size", kInter},
               {"vocab_size", kVocab},     {"num_hidden_layers", kLayers},
               {"num_attention_heads", 4}, {"num_key_value_heads", 2},
               {"max_position_embeddings", 256}};
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<LlamaModel> open(Precision precision, std::shared_ptr<WeightStore>& store) {
    store = WeightStore::open_folder(dir_, decoder_weight_residency(precision));
    store->set_decoder_precision(precision, test::pool_ptr());
    return std::make_unique<LlamaModel>(*store, LlamaConfig::from_json(config_, "config"), "",
                                        test::pool_ptr(), "q8-llama");
  }

  std::filesystem::path dir_;
  nlohmann::json config_;
};

TEST_F(Q8Llama, Int8FollowsItsOwnF32) {
  std::shared_ptr<WeightStore> s32, s8;
  auto f32 = open(Precision::f32, s32);
  auto int8 = open(Precision::int8, s8);
  // every weight quantised (all widths are multiples of 32): about 0.53 of F32's bytes x 2
  EXPECT_LT(int8->weight_bytes() * 3, f32->weight_bytes());

  PromptInput prompt;
  prompt.context_ids = {1, 17, 42, 99, 256, 7, 300, 5};
  prompt.segments.push_back({prompt.context_ids, {}, 0});
  std::vector<float> a(kVocab), b(kVocab);
  auto sa = f32->prefill(prompt, a.data());
  auto sb = int8->prefill(prompt, b.data());
  int agree = 0, decided = 0;
  double worst = 1.0;
  for (int step = 0; step < 24; ++step) {
    const double cos = test::cosine(a.data(), b.data(), a.size());
    worst = std::min(worst, cos);
    EXPECT_GE(cos, 0.995) << "step " << step;
    // f32's greedy token drives both (teacher forcing), so one flip does not derail the rest.
    std::vector<float> sorted = a;
    std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<float>());
    const int32_t ta = static_cast<int32_t>(std::max_element(a.begin(), a.end()) - a.begin());
    const int32_t tb = static_cast<int32_t>(std::max_element(b.begin(), b.end()) - b.begin());
    if (sorted[0] - sorted[1] > 0.02f * (sorted[0] - *std::min_element(a.begin(), a.end()))) {
      ++decided;
      agree += ta == tb;
    }
    DecoderState* s1[] = {sa.get()};
    DecoderState* s2[] = {sb.get()};
    f32->decode(s1, &ta, 1, a.data());
    int8->decode(s2, &ta, 1, b.data());
  }
  EXPECT_EQ(agree, decided);
  EXPECT_GE(decided, 12);
  std::printf("int8 vs f32: worst logits cosine %.5f, greedy %d/%d agree (clear steps)\n", worst,
              agree, decided);
}

TEST_F(Q8Llama, Bf16IsNotADecoderFormat) {
  std::shared_ptr<WeightStore> store = WeightStore::open_folder(dir_);
  try {
    store->set_decoder_precision(Precision::bf16);
    ADD_FAILURE() << "bf16 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unsupported);
  }
}

}  // namespace
}  // namespace mmfuse
