// The ONNX reader: the toy Ultralytics-style exports parse with their metadata
// and weights; malformed, truncated and external-data files fail with
// bad_input naming the file and field.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "io/onnx_model.h"
#include "mmfuse/error.h"

namespace mmfuse {
namespace {

const std::filesystem::path kToys = std::filesystem::path(MMFUSE_FIXTURES) / "yolo_toy";

// A minimal protobuf writer for hand-made inputs.
std::string varint(uint64_t v) {
  std::string s;
  while (v >= 0x80) {
    s.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  s.push_back(static_cast<char>(v));
  return s;
}
std::string field_varint(int field, uint64_t v) { return varint(static_cast<uint64_t>(field) << 3) + varint(v); }
std::string field_bytes(int field, const std::string& b) {
  return varint((static_cast<uint64_t>(field) << 3) | 2) + varint(b.size()) + b;
}
std::string float_bytes(float f) {
  std::string s(4, '\0');
  std::memcpy(s.data(), &f, 4);
  return s;
}

std::string model_with(const std::string& graph_body) {
  return field_varint(1, 8) + field_bytes(8, field_varint(2, 13)) + field_bytes(7, graph_body) +
         field_bytes(14, field_bytes(1, "names") + field_bytes(2, "{0: 'a'}"));
}

OnnxModel parse(const std::string& bytes) {
  return OnnxModel::parse(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "test.onnx");
}

void expect_bad(const std::string& bytes, const std::string& fragment) {
  try {
    parse(bytes);
    FAIL() << "no error, expected one mentioning " << fragment;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input) << e.what();
    EXPECT_NE(std::string(e.what()).find("test.onnx"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(OnnxModel, ReadsToyExport) {
  const OnnxModel m = OnnxModel::load(kToys / "v8_toy_op17.onnx");
  EXPECT_EQ(m.opset(), 17);
  EXPECT_GE(m.ir_version, 7);
  EXPECT_EQ(m.metadata.at("task"), "detect");
  EXPECT_EQ(m.metadata.at("imgsz"), "[64, 96]");
  EXPECT_EQ(m.metadata.at("names"), "{0: 'scratch', 1: 'dent', 2: \"oil 'leak'\"}");
  ASSERT_EQ(m.graph.inputs.size(), 1u);
  EXPECT_EQ(m.graph.inputs[0].name, "images");
  EXPECT_EQ(m.graph.inputs[0].shape, (std::vector<int64_t>{1, 3, 64, 96}));
  ASSERT_EQ(m.graph.outputs.size(), 1u);
  EXPECT_EQ(m.graph.outputs[0].shape, (std::vector<int64_t>{1, 7, 126}));
  size_t convs = 0;
  for (const auto& n : m.graph.nodes) convs += n.op_type == "Conv";
  EXPECT_EQ(convs, 60u);
  size_t floats = 0;
  for (const auto& t : m.graph.initializers) {
    EXPECT_EQ(static_cast<int64_t>(t.is_float() ? t.floats.size() : t.ints.size()), t.numel()) << t.name;
    floats += t.floats.size();
  }
  EXPECT_GT(floats, 10000u);
}

TEST(OnnxModel, ReadsTensorEncodings) {
  // raw_data, float_data (packed), int64_data (unpacked), float16 raw.
  const std::string raw = float_bytes(1.5f) + float_bytes(-2.f);
  const std::string t1 = field_varint(1, 2) + field_varint(2, 1) + field_bytes(8, "raw") + field_bytes(9, raw);
  const std::string t2 = field_varint(1, 1) + field_varint(2, 1) + field_bytes(8, "packed") + field_bytes(4, float_bytes(3.25f));
  const std::string t3 = field_varint(1, 2) + field_varint(2, 7) + field_bytes(8, "ints") + field_varint(7, 5) +
                         field_varint(7, static_cast<uint64_t>(-3));
  const std::string half = std::string("\x00\x3c", 2);  // 1.0 in float16
  const std::string t4 = field_varint(2, 10) + field_bytes(8, "half") + field_bytes(9, half);
  const OnnxModel m = parse(model_with(field_bytes(5, t1) + field_bytes(5, t2) + field_bytes(5, t3) + field_bytes(5, t4)));
  ASSERT_EQ(m.graph.initializers.size(), 4u);
  EXPECT_EQ(m.graph.initializers[0].floats, (std::vector<float>{1.5f, -2.f}));
  EXPECT_EQ(m.graph.initializers[1].floats, (std::vector<float>{3.25f}));
  EXPECT_EQ(m.graph.initializers[2].ints, (std::vector<int64_t>{5, -3}));
  EXPECT_EQ(m.graph.initializers[3].floats, (std::vector<float>{1.f}));
  EXPECT_EQ(m.metadata.at("names"), "{0: 'a'}");
}

TEST(OnnxModel, RejectsMalformedInput) {
  expect_bad("", "not an ONNX model");
  expect_bad("garbage that is not protobuf", "model");
  // Length running past the end.
  expect_bad(field_varint(1, 8) + varint((7 << 3) | 2) + varint(100) + "abc", "runs past the end");
  // Element count does not match dims.
  const std::string bad_count = field_varint(1, 3) + field_varint(2, 1) + field_bytes(8, "w") + field_bytes(9, float_bytes(1.f));
  expect_bad(model_with(field_bytes(5, bad_count)), "1 values for dims of 3 elements");
  // External data is refused with a hint.
  const std::string external = field_varint(1, 1) + field_varint(2, 1) + field_bytes(8, "w") + field_varint(14, 1);
  expect_bad(model_with(field_bytes(5, external)), "external file");
  // Unsupported element type (string).
  expect_bad(model_with(field_bytes(5, field_varint(2, 8) + field_bytes(8, "s"))), "unsupported data_type");
  // Truncated varint.
  expect_bad(std::string("\x08\xff", 2), "truncated varint");
  // Every truncation of a real file fails cleanly (never crashes).
  const OnnxModel ok = OnnxModel::load(kToys / "op_conv_silu_pool_resize.onnx");
  EXPECT_EQ(ok.graph.nodes.size(), 5u);
}

TEST(OnnxModel, TruncationsFailCleanly) {
  std::string bytes;
  {
    FILE* f = std::fopen((kToys / "op_conv_silu_pool_resize.onnx").c_str(), "rb");
    ASSERT_NE(f, nullptr);
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.append(buf, n);
    std::fclose(f);
  }
  for (size_t len = 0; len + 1 < bytes.size(); len += 7) {
    try {
      parse(bytes.substr(0, len));
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    }
  }
}

TEST(OnnxModel, MissingFileIsNotFound) {
  try {
    OnnxModel::load(kToys / "no_such.onnx");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::not_found);
    EXPECT_NE(std::string(e.what()).find("no_such.onnx"), std::string::npos);
  }
}

}  // namespace
}  // namespace mmfuse
