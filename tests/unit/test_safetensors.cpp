// safetensors reading: round trips, dtype conversion, and every kind of damage.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "io/model_folder.h"
#include "io/safetensors.h"
#include "mmfuse/error.h"
#include "test_util.h"

namespace mmfuse {
namespace {

namespace fs = std::filesystem;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("mmfuse_st_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static TensorToWrite f32_tensor(const std::string& name, std::vector<int64_t> shape,
                                  const std::vector<float>& values) {
    TensorToWrite t{name, DType::F32, std::move(shape), {}};
    t.bytes.resize(values.size() * 4);
    std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
    return t;
  }
  void write_raw(const fs::path& p, const std::string& bytes) {
    std::ofstream(p, std::ios::binary) << bytes;
  }
  std::string error_of(const fs::path& p) {
    try {
      SafetensorsFile::open(p);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
  static std::string with_header(const std::string& json, size_t data_bytes) {
    std::string out(8, '\0');
    uint64_t n = json.size();
    for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>(n >> (8 * i));
    return out + json + std::string(data_bytes, '\0');
  }
  fs::path dir_;
};

TEST_F(SafetensorsTest, RoundTripsF32) {
  write_safetensors(dir_ / "a.safetensors",
                    {f32_tensor("w", {2, 3}, {1, 2, 3, 4, 5, 6}), f32_tensor("s", {}, {7.5f})});
  SafetensorsFile f = SafetensorsFile::open(dir_ / "a.safetensors");
  ASSERT_NE(f.find("w"), nullptr);
  EXPECT_EQ(f.find("w")->shape, (std::vector<int64_t>{2, 3}));
  float v[6];
  convert_to_f32(DType::F32, f.find("w")->data, 6, v);
  EXPECT_EQ(v[5], 6.0f);
  EXPECT_EQ(f.find("s")->numel(), 1);
  EXPECT_EQ(f.metadata().at("format"), "pt");
}

TEST(DTypeConversion, HalfAndBFloat16HandChecked) {
  // F16: 1.0 = 0x3C00, -2.0 = 0xC000, 65504 = 0x7BFF, smallest subnormal 0x0001 = 2^-24, inf
  // 0x7C00.
  uint16_t half[] = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x7C00, 0x0000, 0x3555};
  float out[7];
  convert_to_f32(DType::F16, reinterpret_cast<const uint8_t*>(half), 7, out);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(out[2], 65504.0f);
  EXPECT_EQ(out[3], std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isinf(out[4]));
  EXPECT_EQ(out[5], 0.0f);
  EXPECT_NEAR(out[6], 0.333251953125, 1e-12);
  // BF16 is the top half of a float32: 1.0 = 0x3F80, -3.0 = 0xC040.
  uint16_t bf[] = {0x3F80, 0xC040};
  convert_to_f32(DType::BF16, reinterpret_cast<const uint8_t*>(bf), 2, out);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -3.0f);
}

TEST_F(SafetensorsTest, RejectsDamagedFiles) {
  write_raw(dir_ / "short", "abc");
  EXPECT_NE(error_of(dir_ / "short").find("truncated"), std::string::npos);
  write_raw(dir_ / "huge_header", std::string("\xff\xff\xff\xff\x00\x00\x00\x00", 8) + "{}");
  EXPECT_NE(error_of(dir_ / "huge_header").find("header length"), std::string::npos);
  write_raw(dir_ / "not_json", with_header("{not json", 0));
  EXPECT_NE(error_of(dir_ / "not_json").find("not valid JSON"), std::string::npos);
  write_raw(dir_ / "dtype",
            with_header(R"({"t":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}})", 1));
  EXPECT_NE(error_of(dir_ / "dtype").find("unknown dtype"), std::string::npos);
  write_raw(dir_ / "trunc",
            with_header(R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8));
  std::string e = error_of(dir_ / "trunc");
  EXPECT_NE(e.find("outside the data area"), std::string::npos) << e;
  EXPECT_NE(e.find("\"t\""), std::string::npos) << e;
  write_raw(dir_ / "size",
            with_header(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", 16));
  EXPECT_NE(error_of(dir_ / "size").find("do not match"), std::string::npos);
  write_raw(dir_ / "overlap", with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},
      "b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                                          12));
  EXPECT_NE(error_of(dir_ / "overlap").find("overlap"), std::string::npos);
  write_raw(dir_ / "negative",
            with_header(R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4));
  EXPECT_NE(error_of(dir_ / "negative").find("non-negative"), std::string::npos);
  EXPECT_NE(error_of(dir_ / "absent").find("absent"), std::string::npos);
}

TEST_F(SafetensorsTest, WeightStoreChecksNamesShapesAndShards) {
  write_safetensors(dir_ / "model-00001-of-00002.safetensors", {f32_tensor("a", {2}, {1, 2})});
  write_safetensors(dir_ / "model-00002-of-00002.safetensors", {f32_tensor("b", {1, 2}, {3, 4})});
  std::ofstream(dir_ / "model.safetensors.index.json")
      << R"({"metadata":{},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}})";
  auto store = WeightStore::open_folder(dir_);
  EXPECT_EQ(store->f32("b", {1, 2})[1], 4.0f);
  try {
    store->f32("b", {2});
    FAIL() << "shape mismatch accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("has shape [1, 2], expected [2]"), std::string::npos)
        << e.what();
  }
  try {
    store->f32("missing.weight", {1});
    FAIL() << "missing tensor accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing tensor \"missing.weight\""), std::string::npos);
  }
}

// Decoders read their weights into private (huge-page) memory: the bytes are
// the file's, release() must not drop them (MADV_DONTNEED would zero private
// pages), and a file of several read chunks arrives whole.
TEST_F(SafetensorsTest, PrivateCopyHoldsTheSameBytes) {
  std::vector<float> big(20u << 20);  // 80 MB: three 32 MiB read chunks
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i % 9973) - 17.5f;
  write_safetensors(dir_ / "model.safetensors",
                    {f32_tensor("big", {static_cast<int64_t>(big.size())}, big),
                     f32_tensor("small", {3}, {1, 2, 3})});
  auto mapped = WeightStore::open_folder(dir_);
  auto copied = WeightStore::open_folder(dir_, FileResidency::huge_pages);
  const float* a = mapped->f32("big", {static_cast<int64_t>(big.size())});
  const float* b = copied->f32("big", {static_cast<int64_t>(big.size())});
  EXPECT_NE(a, b);
  EXPECT_EQ(std::memcmp(a, b, big.size() * sizeof(float)), 0);
  copied->release("big");
  EXPECT_EQ(b[big.size() - 1], big.back());
  EXPECT_EQ(copied->f32("small", {3})[2], 3.0f);
  EXPECT_THROW(SafetensorsFile::open(dir_ / "absent.safetensors", FileResidency::huge_pages),
               Error);
}

TEST_F(SafetensorsTest, MissingWeightsNameTheFolder) {
  try {
    WeightStore::open_folder(dir_);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::not_found);
    EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos);
  }
}

TEST(WeightStoreF16, UpcastsTheReferenceF16Folder) {
  auto f16 = WeightStore::open_folder(test::fixture("clip/models/clip-tiny-quickgelu-p32-f16"));
  auto f32 = WeightStore::open_folder(test::fixture("clip/models/clip-tiny-quickgelu-p32"));
  const float* a = f16->f32("text_projection.weight", {16, 32});
  const float* b = f32->f32("text_projection.weight", {16, 32});
  for (int i = 0; i < 16 * 32; ++i) ASSERT_NEAR(a[i], b[i], std::fabs(b[i]) * 1e-3 + 1e-7);
  EXPECT_EQ(f16->info("text_model.embeddings.position_ids").dtype, DType::I64);
}

}  // namespace
}  // namespace mmfuse

// config.json integers: 3 and 3.0 are accepted; values that do not fit int64 (which
// a fuzzer found: casting 1e300 to int64 is undefined) are a clear error.
TEST(JsonFieldsInteger, AcceptsWholeNumbersAndRejectsOutOfRange) {
  const auto config = nlohmann::json::parse(
      R"({"a": 3, "b": 3.0, "c": -7, "d": 1e300, "e": 18446744073709551615,
          "f": 2.5, "g": "3", "h": -1e19})");
  mmfuse::JsonFields fields(config, "config.json");
  EXPECT_EQ(fields.integer("a", 0), 3);
  EXPECT_EQ(fields.integer("b", 0), 3);
  EXPECT_EQ(fields.integer("c", 0), -7);
  EXPECT_EQ(fields.integer("missing", 42), 42);
  for (const char* bad : {"d", "e", "f", "g", "h"}) {
    try {
      fields.integer(bad, 0);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const mmfuse::Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("\"") + bad + "\""), std::string::npos)
          << e.what();
    }
  }
}
