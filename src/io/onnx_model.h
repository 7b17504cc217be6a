// Reads ONNX model files (protobuf wire format) without libprotobuf: linking
// libprotobuf next to libsentencepiece (which embeds its own copy) crashes, and
// only a small part of onnx.proto is needed to run exported detectors.
// Everything read is bounds-checked; every error names the file and the field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace mmfuse {

// onnx.TensorProto.DataType values this reader converts.
enum class OnnxType : int32_t {
  undefined = 0, float32 = 1, uint8 = 2, int8 = 3, uint16 = 4, int16 = 5, int32 = 6, int64 = 7,
  string = 8, boolean = 9, float16 = 10, float64 = 11, uint32 = 12, uint64 = 13, bfloat16 = 16,
};

// A constant tensor. Floating types are converted to float32 (`floats`),
// integer and boolean types to int64 (`ints`); `type` keeps the stored type.
struct OnnxTensor {
  std::string name;
  OnnxType type = OnnxType::undefined;
  std::vector<int64_t> dims;
  std::vector<float> floats;
  std::vector<int64_t> ints;

  bool is_float() const;
  int64_t numel() const;  // product of dims (1 for a scalar)
};

struct OnnxAttribute {
  enum class Kind { undefined, f, i, s, t, floats, ints, other };
  std::string name;
  Kind kind = Kind::undefined;
  float f = 0;
  int64_t i = 0;
  std::string s;
  std::vector<OnnxTensor> t;  // zero or one tensor
  std::vector<float> floats;
  std::vector<int64_t> ints;
};

struct OnnxNode {
  std::string name, op_type, domain;
  std::vector<std::string> inputs, outputs;  // "" = an omitted optional input
  std::vector<OnnxAttribute> attributes;

  const OnnxAttribute* attribute(const std::string& attr_name) const;
};

// A graph input/output: its element type and shape; a dimension is -1 when
// symbolic (dim_param) or absent.
struct OnnxValueInfo {
  std::string name;
  OnnxType type = OnnxType::undefined;
  std::vector<int64_t> shape;
  bool has_shape = false;
};

struct OnnxGraph {
  std::string name;
  std::vector<OnnxNode> nodes;
  std::vector<OnnxTensor> initializers;
  std::vector<OnnxValueInfo> inputs, outputs, value_info;
};

struct OnnxModel {
  std::string source;  // the file name (or the name given to parse), for messages
  int64_t ir_version = 0;
  std::map<std::string, int64_t> opsets;  // domain ("" = ai.onnx) -> version
  std::map<std::string, std::string> metadata;
  std::string producer_name, producer_version;
  OnnxGraph graph;

  // The default-domain opset (0 when not declared).
  int64_t opset() const;

  // Throws Error(not_found) when the file cannot be read and Error(bad_input)
  // for anything that is not a well-formed ONNX model this reader handles
  // (tensors with external data included).
  static OnnxModel load(const std::filesystem::path& path);
  static OnnxModel parse(const uint8_t* data, size_t size, const std::string& source);
};

const char* onnx_type_name(OnnxType type);

}  // namespace mmfuse
