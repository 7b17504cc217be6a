#include "io/onnx_model.h"

#include <cstring>
#include <fstream>
#include <limits>

#include "mmfuse/error.h"

namespace mmfuse {

namespace {

// Protobuf wire types.
constexpr int kVarint = 0, kFixed64 = 1, kBytes = 2, kFixed32 = 5;

// No tensor in a detector comes near this; it bounds allocations driven by dims.
constexpr int64_t kMaxElements = int64_t{1} << 32;

// A bounded view of protobuf bytes; `where` is the field path for messages
// ("model.graph.node[3].attribute[1]").
class Reader {
 public:
  Reader(const uint8_t* p, const uint8_t* end, const std::string& source, std::string where)
      : p_(p), end_(end), source_(source), where_(std::move(where)) {}

  bool done() const { return p_ >= end_; }
  const std::string& where() const { return where_; }

  [[noreturn]] void fail(const std::string& what) const {
    throw_error(ErrorKind::bad_input, source_ + ": " + where_ + ": " + what);
  }

  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) fail("truncated varint");
      const uint8_t byte = *p_++;
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return value;
    }
    fail("varint longer than 10 bytes");
  }

  // Returns false at the end of the message.
  bool next(int* field, int* wire) {
    if (done()) return false;
    const uint64_t key = varint();
    *field = static_cast<int>(key >> 3);
    *wire = static_cast<int>(key & 7);
    if (key >> 3 == 0 || key >> 3 > (1u << 29)) fail("invalid field number");
    return true;
  }

  Reader sub(int wire, const std::string& child) {
    expect(wire, kBytes, child);
    const uint64_t n = varint();
    if (n > static_cast<uint64_t>(end_ - p_)) fail(child + ": length " + std::to_string(n) + " runs past the end");
    Reader r(p_, p_ + n, source_, where_ + "." + child);
    p_ += n;
    return r;
  }

  std::string bytes(int wire, const std::string& child) {
    Reader r = sub(wire, child);
    return std::string(reinterpret_cast<const char*>(r.p_), r.end_ - r.p_);
  }

  int64_t int_value(int wire, const std::string& child) {
    expect(wire, kVarint, child);
    return static_cast<int64_t>(varint());
  }

  float float_value(int wire, const std::string& child) {
    expect(wire, kFixed32, child);
    return fixed<float>();
  }

  // A repeated varint field, packed or not.
  void ints(int wire, const std::string& child, std::vector<int64_t>* out) {
    if (wire == kVarint) {
      out->push_back(static_cast<int64_t>(varint()));
      return;
    }
    Reader r = sub(wire, child);
    while (!r.done()) {
      if (out->size() >= static_cast<size_t>(kMaxElements)) r.fail("too many values");
      out->push_back(static_cast<int64_t>(r.varint()));
    }
  }

  // A repeated fixed32 float / fixed64 double field, packed or not.
  template <typename T>
  void reals(int wire, const std::string& child, std::vector<float>* out) {
    constexpr int single = sizeof(T) == 4 ? kFixed32 : kFixed64;
    if (wire == single) {
      out->push_back(static_cast<float>(fixed<T>()));
      return;
    }
    Reader r = sub(wire, child);
    if ((r.end_ - r.p_) % sizeof(T) != 0) r.fail("packed length is not a multiple of " + std::to_string(sizeof(T)));
    out->reserve(out->size() + (r.end_ - r.p_) / sizeof(T));
    while (!r.done()) out->push_back(static_cast<float>(r.fixed<T>()));
  }

  void skip(int wire) {
    switch (wire) {
      case kVarint: varint(); return;
      case kFixed64: advance(8); return;
      case kFixed32: advance(4); return;
      case kBytes: {
        const uint64_t n = varint();
        if (n > static_cast<uint64_t>(end_ - p_)) fail("length " + std::to_string(n) + " runs past the end");
        p_ += n;
        return;
      }
      default: fail("unsupported wire type " + std::to_string(wire));
    }
  }

 private:
  void expect(int wire, int wanted, const std::string& child) const {
    if (wire != wanted)
      fail(child + ": wire type " + std::to_string(wire) + ", expected " + std::to_string(wanted));
  }
  void advance(size_t n) {
    if (n > static_cast<size_t>(end_ - p_)) fail("truncated fixed-size value");
    p_ += n;
  }
  template <typename T>
  T fixed() {
    const uint8_t* at = p_;
    advance(sizeof(T));
    T v;
    std::memcpy(&v, at, sizeof(T));
    return v;
  }

  const uint8_t* p_;
  const uint8_t* end_;
  const std::string& source_;
  std::string where_;
};

std::string indexed(const char* name, size_t i) { return std::string(name) + "[" + std::to_string(i) + "]"; }

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) {
        mant <<= 1;
        --exp;
      }
      bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

size_t raw_element_size(OnnxType type) {
  switch (type) {
    case OnnxType::float32: case OnnxType::int32: case OnnxType::uint32: return 4;
    case OnnxType::float64: case OnnxType::int64: case OnnxType::uint64: return 8;
    case OnnxType::float16: case OnnxType::bfloat16: case OnnxType::int16: case OnnxType::uint16: return 2;
    case OnnxType::uint8: case OnnxType::int8: case OnnxType::boolean: return 1;
    default: return 0;
  }
}

// Converts raw_data (little-endian) to floats or int64s.
void decode_raw(const std::string& raw, OnnxTensor* t, const Reader& r) {
  const size_t es = raw_element_size(t->type);
  if (es == 0) r.fail("raw_data of unsupported data_type " + std::string(onnx_type_name(t->type)));
  if (raw.size() % es != 0) r.fail("raw_data length " + std::to_string(raw.size()) + " is not a multiple of " + std::to_string(es));
  const size_t n = raw.size() / es;
  const auto* b = reinterpret_cast<const uint8_t*>(raw.data());
  auto load = [&](size_t i, auto zero) {
    decltype(zero) v;
    std::memcpy(&v, b + i * es, sizeof(v));
    return v;
  };
  if (t->is_float()) {
    t->floats.resize(n);
    for (size_t i = 0; i < n; ++i) {
      switch (t->type) {
        case OnnxType::float32: t->floats[i] = load(i, float{}); break;
        case OnnxType::float64: t->floats[i] = static_cast<float>(load(i, double{})); break;
        case OnnxType::float16: t->floats[i] = half_to_float(load(i, uint16_t{})); break;
        default: {  // bfloat16
          const uint32_t bits = static_cast<uint32_t>(load(i, uint16_t{})) << 16;
          std::memcpy(&t->floats[i], &bits, 4);
        }
      }
    }
    return;
  }
  t->ints.resize(n);
  for (size_t i = 0; i < n; ++i) {
    switch (t->type) {
      case OnnxType::int64: case OnnxType::uint64: t->ints[i] = load(i, int64_t{}); break;
      case OnnxType::int32: t->ints[i] = load(i, int32_t{}); break;
      case OnnxType::uint32: t->ints[i] = load(i, uint32_t{}); break;
      case OnnxType::int16: t->ints[i] = load(i, int16_t{}); break;
      case OnnxType::uint16: t->ints[i] = load(i, uint16_t{}); break;
      case OnnxType::int8: t->ints[i] = load(i, int8_t{}); break;
      default: t->ints[i] = b[i]; break;  // uint8, bool
    }
  }
}

OnnxTensor parse_tensor(Reader r) {
  OnnxTensor t;
  std::string raw;
  bool has_raw = false, external = false;
  std::vector<int64_t> int32_data, int64_data;
  std::vector<float> float_data;
  int field, wire;
  while (r.next(&field, &wire)) {
    switch (field) {
      case 1: r.ints(wire, "dims", &t.dims); break;
      case 2: t.type = static_cast<OnnxType>(r.int_value(wire, "data_type")); break;
      case 4: r.reals<float>(wire, "float_data", &float_data); break;
      case 5: r.ints(wire, "int32_data", &int32_data); break;
      case 7: r.ints(wire, "int64_data", &int64_data); break;
      case 8: t.name = r.bytes(wire, "name"); break;
      case 9: raw = r.bytes(wire, "raw_data"); has_raw = true; break;
      case 10: r.reals<double>(wire, "double_data", &float_data); break;
      case 13: r.skip(wire); external = true; break;
      case 14: external = r.int_value(wire, "data_location") == 1; break;
      case 3: case 6: case 11: r.skip(wire); break;  // segment, string_data, uint64_data
      default: r.skip(wire);
    }
  }
  const std::string label = t.name.empty() ? std::string("tensor") : "tensor '" + t.name + "'";
  if (external)
    r.fail(label + " keeps its data in an external file; export the model with the weights inside "
                   "the .onnx file");
  if (raw_element_size(t.type) == 0)
    r.fail(label + ": unsupported data_type " + std::to_string(static_cast<int>(t.type)));
  int64_t numel = 1;
  for (int64_t d : t.dims) {
    if (d < 0) r.fail(label + ": negative dimension " + std::to_string(d));
    if (d > 0 && numel > kMaxElements / d) r.fail(label + ": too many elements");
    numel *= d;
  }
  if (numel > kMaxElements) r.fail(label + ": too many elements");
  if (has_raw) {
    decode_raw(raw, &t, r);
  } else if (t.is_float()) {
    if (t.type == OnnxType::float16 || t.type == OnnxType::bfloat16) {
      // Stored as their 16 bits in int32_data.
      for (int64_t bits : int32_data) {
        if (t.type == OnnxType::float16) {
          t.floats.push_back(half_to_float(static_cast<uint16_t>(bits)));
        } else {
          const uint32_t b32 = static_cast<uint32_t>(bits & 0xffff) << 16;
          float f;
          std::memcpy(&f, &b32, 4);
          t.floats.push_back(f);
        }
      }
    } else {
      t.floats = std::move(float_data);
    }
  } else {
    t.ints = t.type == OnnxType::int64 ? std::move(int64_data) : std::move(int32_data);
  }
  const size_t have = t.is_float() ? t.floats.size() : t.ints.size();
  if (static_cast<int64_t>(have) != numel)
    r.fail(label + ": " + std::to_string(have) + " values for dims of " + std::to_string(numel) + " elements");
  return t;
}

OnnxAttribute parse_attribute(Reader r) {
  OnnxAttribute a;
  int field, wire;
  while (r.next(&field, &wire)) {
    switch (field) {
      case 1: a.name = r.bytes(wire, "name"); break;
      case 2: a.f = r.float_value(wire, "f"); a.kind = OnnxAttribute::Kind::f; break;
      case 3: a.i = r.int_value(wire, "i"); a.kind = OnnxAttribute::Kind::i; break;
      case 4: a.s = r.bytes(wire, "s"); a.kind = OnnxAttribute::Kind::s; break;
      case 5:
        a.t.clear();
        a.t.push_back(parse_tensor(r.sub(wire, "t")));
        a.kind = OnnxAttribute::Kind::t;
        break;
      case 7: r.reals<float>(wire, "floats", &a.floats); a.kind = OnnxAttribute::Kind::floats; break;
      case 8: r.ints(wire, "ints", &a.ints); a.kind = OnnxAttribute::Kind::ints; break;
      case 6: case 9: case 10: case 11: r.skip(wire); a.kind = OnnxAttribute::Kind::other; break;
      case 20: {
        // `type` names the kind even for empty lists (ints: [] has no values).
        const int64_t type = r.int_value(wire, "type");
        if (type == 6 && a.kind == OnnxAttribute::Kind::undefined) a.kind = OnnxAttribute::Kind::floats;
        if (type == 7 && a.kind == OnnxAttribute::Kind::undefined) a.kind = OnnxAttribute::Kind::ints;
        break;
      }
      default: r.skip(wire);
    }
  }
  return a;
}

OnnxNode parse_node(Reader r) {
  OnnxNode n;
  int field, wire;
  while (r.next(&field, &wire)) {
    switch (field) {
      case 1: n.inputs.push_back(r.bytes(wire, "input")); break;
      case 2: n.outputs.push_back(r.bytes(wire, "output")); break;
      case 3: n.name = r.bytes(wire, "name"); break;
      case 4: n.op_type = r.bytes(wire, "op_type"); break;
      case 5: n.attributes.push_back(parse_attribute(r.sub(wire, indexed("attribute", n.attributes.size())))); break;
      case 7: n.domain = r.bytes(wire, "domain"); break;
      default: r.skip(wire);
    }
  }
  return n;
}

OnnxValueInfo parse_value_info(Reader r) {
  OnnxValueInfo v;
  int field, wire;
  while (r.next(&field, &wire)) {
    if (field == 1) {
      v.name = r.bytes(wire, "name");
    } else if (field == 2) {  // TypeProto
      Reader type = r.sub(wire, "type");
      while (type.next(&field, &wire)) {
        if (field != 1) {  // only tensor_type
          type.skip(wire);
          continue;
        }
        Reader tensor = type.sub(wire, "tensor_type");
        while (tensor.next(&field, &wire)) {
          if (field == 1) {
            v.type = static_cast<OnnxType>(tensor.int_value(wire, "elem_type"));
          } else if (field == 2) {
            v.has_shape = true;
            Reader shape = tensor.sub(wire, "shape");
            while (shape.next(&field, &wire)) {
              if (field != 1) {
                shape.skip(wire);
                continue;
              }
              Reader dim = shape.sub(wire, indexed("dim", v.shape.size()));
              int64_t value = -1;
              while (dim.next(&field, &wire)) {
                if (field == 1) value = dim.int_value(wire, "dim_value");
                else dim.skip(wire);
              }
              v.shape.push_back(value < 0 ? -1 : value);
            }
          } else {
            tensor.skip(wire);
          }
        }
      }
    } else {
      r.skip(wire);
    }
  }
  return v;
}

OnnxGraph parse_graph(Reader r) {
  OnnxGraph g;
  int field, wire;
  while (r.next(&field, &wire)) {
    switch (field) {
      case 1: g.nodes.push_back(parse_node(r.sub(wire, indexed("node", g.nodes.size())))); break;
      case 2: g.name = r.bytes(wire, "name"); break;
      case 5: g.initializers.push_back(parse_tensor(r.sub(wire, indexed("initializer", g.initializers.size())))); break;
      case 11: g.inputs.push_back(parse_value_info(r.sub(wire, indexed("input", g.inputs.size())))); break;
      case 12: g.outputs.push_back(parse_value_info(r.sub(wire, indexed("output", g.outputs.size())))); break;
      case 13: g.value_info.push_back(parse_value_info(r.sub(wire, indexed("value_info", g.value_info.size())))); break;
      case 15: r.fail("sparse initializers are not supported");
      default: r.skip(wire);
    }
  }
  return g;
}

}  // namespace

bool OnnxTensor::is_float() const {
  return type == OnnxType::float32 || type == OnnxType::float16 || type == OnnxType::float64 ||
         type == OnnxType::bfloat16;
}

int64_t OnnxTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

const OnnxAttribute* OnnxNode::attribute(const std::string& attr_name) const {
  for (const auto& a : attributes)
    if (a.name == attr_name) return &a;
  return nullptr;
}

int64_t OnnxModel::opset() const {
  auto it = opsets.find("");
  if (it == opsets.end()) it = opsets.find("ai.onnx");
  return it == opsets.end() ? 0 : it->second;
}

OnnxModel OnnxModel::parse(const uint8_t* data, size_t size, const std::string& source) {
  OnnxModel m;
  m.source = source;
  Reader r(data, data + size, m.source, "model");
  bool has_graph = false;
  int field, wire;
  while (r.next(&field, &wire)) {
    switch (field) {
      case 1: m.ir_version = r.int_value(wire, "ir_version"); break;
      case 2: m.producer_name = r.bytes(wire, "producer_name"); break;
      case 3: m.producer_version = r.bytes(wire, "producer_version"); break;
      case 7:
        if (has_graph) r.fail("more than one graph");
        m.graph = parse_graph(r.sub(wire, "graph"));
        has_graph = true;
        break;
      case 8: {
        Reader op = r.sub(wire, indexed("opset_import", m.opsets.size()));
        std::string domain;
        int64_t version = 0;
        while (op.next(&field, &wire)) {
          if (field == 1) domain = op.bytes(wire, "domain");
          else if (field == 2) version = op.int_value(wire, "version");
          else op.skip(wire);
        }
        m.opsets[domain] = version;
        break;
      }
      case 14: {
        Reader entry = r.sub(wire, indexed("metadata_props", m.metadata.size()));
        std::string key, value;
        while (entry.next(&field, &wire)) {
          if (field == 1) key = entry.bytes(wire, "key");
          else if (field == 2) value = entry.bytes(wire, "value");
          else entry.skip(wire);
        }
        m.metadata[key] = value;
        break;
      }
      default: r.skip(wire);
    }
  }
  if (!has_graph || m.ir_version <= 0)
    throw_error(ErrorKind::bad_input, source + ": not an ONNX model (no ir_version or graph)");
  return m;
}

OnnxModel OnnxModel::load(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  MMFUSE_CHECK(in.good(), not_found, path.string() + ": cannot open the ONNX file");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  MMFUSE_CHECK(!in.bad(), bad_input, path.string() + ": cannot read the ONNX file");
  return parse(bytes.data(), bytes.size(), path.string());
}

const char* onnx_type_name(OnnxType type) {
  switch (type) {
    case OnnxType::float32: return "float32";
    case OnnxType::uint8: return "uint8";
    case OnnxType::int8: return "int8";
    case OnnxType::uint16: return "uint16";
    case OnnxType::int16: return "int16";
    case OnnxType::int32: return "int32";
    case OnnxType::int64: return "int64";
    case OnnxType::string: return "string";
    case OnnxType::boolean: return "bool";
    case OnnxType::float16: return "float16";
    case OnnxType::float64: return "float64";
    case OnnxType::uint32: return "uint32";
    case OnnxType::uint64: return "uint64";
    case OnnxType::bfloat16: return "bfloat16";
    default: return "undefined";
  }
}

}  // namespace mmfuse
