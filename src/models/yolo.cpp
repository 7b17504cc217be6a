#include "models/yolo.h"

#include <algorithm>
#include <cctype>
#include <chrono>

#include "mmfuse/error.h"
#include "vision/letterbox.h"

namespace mmfuse {

namespace {

const char* kNotUltralytics = "; not a recognised Ultralytics export";

void append_utf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

// A cursor over a Python literal.
struct PyLiteral {
  const std::string& s;
  const std::string& where;
  size_t p = 0;

  [[noreturn]] void fail(const std::string& what) const {
    throw_error(ErrorKind::bad_input, where + ": " + what + " at offset " + std::to_string(p));
  }
  void ws() {
    while (p < s.size() && std::isspace(static_cast<unsigned char>(s[p]))) ++p;
  }
  bool eat(char c) {
    ws();
    if (p < s.size() && s[p] == c) {
      ++p;
      return true;
    }
    return false;
  }
  int64_t integer() {
    ws();
    size_t start = p;
    if (p < s.size() && (s[p] == '-' || s[p] == '+')) ++p;
    while (p < s.size() && std::isdigit(static_cast<unsigned char>(s[p]))) ++p;
    if (p == start || p - start > 12) fail("expected an integer");
    return std::stoll(s.substr(start, p - start));
  }
  uint32_t hex(int digits) {
    if (p + digits > s.size()) fail("truncated escape");
    uint32_t v = 0;
    for (int k = 0; k < digits; ++k) {
      const char c = s[p++];
      if (!std::isxdigit(static_cast<unsigned char>(c))) fail("bad hex escape");
      v = v * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : std::tolower(c) - 'a' + 10);
    }
    if (v > 0x10ffff) fail("escape beyond Unicode");
    return v;
  }
  std::string string() {
    ws();
    if (p >= s.size() || (s[p] != '\'' && s[p] != '"')) fail("expected a quoted string");
    const char quote = s[p++];
    std::string out;
    while (true) {
      if (p >= s.size()) fail("unterminated string");
      const char c = s[p++];
      if (c == quote) return out;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (p >= s.size()) fail("unterminated escape");
      const char e = s[p++];
      switch (e) {
        case 'n': out.push_back('\n'); break;
        case 't': out.push_back('\t'); break;
        case 'r': out.push_back('\r'); break;
        case '\\': case '\'': case '"': out.push_back(e); break;
        case 'x': append_utf8(&out, hex(2)); break;
        case 'u': append_utf8(&out, hex(4)); break;
        case 'U': append_utf8(&out, hex(8)); break;
        default: out.push_back('\\'); out.push_back(e);
      }
    }
  }
};

int parse_int_field(const std::string& text, const std::string& where) {
  // "32", "32.0" or "tensor(32.)"-like: the first integer in the text.
  size_t p = text.find_first_of("0123456789");
  MMFUSE_CHECK(p != std::string::npos, bad_input, where + ": '" + text + "' is not a number");
  size_t e = p;
  while (e < text.size() && std::isdigit(static_cast<unsigned char>(text[e])) && e - p < 9) ++e;
  return std::stoi(text.substr(p, e - p));
}

}  // namespace

std::vector<std::string> parse_yolo_names(const std::string& text, const std::string& where) {
  PyLiteral in{text, where};
  std::vector<std::string> names;
  if (in.eat('[')) {
    if (!in.eat(']')) {
      do names.push_back(in.string());
      while (in.eat(','));
      if (!in.eat(']')) in.fail("expected ']'");
    }
  } else if (in.eat('{')) {
    std::map<int64_t, std::string> byid;
    if (!in.eat('}')) {
      do {
        in.ws();
        if (in.p < text.size() && text[in.p] == '}') break;  // trailing comma
        const int64_t id = in.integer();
        if (!in.eat(':')) in.fail("expected ':'");
        if (!byid.emplace(id, in.string()).second) in.fail("class id " + std::to_string(id) + " twice");
      } while (in.eat(','));
      if (!in.eat('}')) in.fail("expected '}'");
    }
    int64_t expect = 0;
    for (auto& [id, name] : byid) {
      if (id != expect++) in.fail("class ids are not 0.." + std::to_string(byid.size() - 1));
      names.push_back(std::move(name));
    }
  } else {
    in.fail("expected a dict or list of class names");
  }
  in.ws();
  if (in.p != text.size()) in.fail("unexpected text after the names");
  MMFUSE_CHECK(!names.empty(), bad_input, where + ": no class names");
  return names;
}

std::pair<int, int> parse_yolo_imgsz(const std::string& text, const std::string& where) {
  PyLiteral in{text, where};
  std::vector<int64_t> v;
  const bool bracket = in.eat('[') || in.eat('(');
  do v.push_back(in.integer());
  while (bracket && in.eat(','));
  if (bracket && !in.eat(']') && !in.eat(')')) in.fail("expected ']'");
  MMFUSE_CHECK(v.size() == 1 || v.size() == 2, bad_input, where + ": expected one or two sizes");
  for (int64_t x : v) MMFUSE_CHECK(x > 0 && x <= 16384, bad_input, where + ": size out of range");
  return {static_cast<int>(v[0]), static_cast<int>(v.size() == 2 ? v[1] : v[0])};
}

std::unique_ptr<YoloDetector> YoloDetector::open(const std::filesystem::path& path, const YoloOpenOptions& options) {
  std::unique_ptr<YoloDetector> d(new YoloDetector());
  d->model_ = OnnxModel::load(path);
  d->source_ = path.string();
  const auto& meta = d->model_.metadata;
  auto field = [&](const char* key) { return d->source_ + ": metadata_props." + key; };
  auto names = meta.find("names");
  MMFUSE_CHECK(names != meta.end(), unsupported, field("names") + " is missing" + kNotUltralytics);
  d->names_ = parse_yolo_names(names->second, field("names"));
  if (auto t = meta.find("task"); t != meta.end()) d->task_ = t->second;
  MMFUSE_CHECK(d->task_.empty() || d->task_ == "detect", unsupported,
               field("task") + " is '" + d->task_ + "'; only detection models (task 'detect') are supported");
  if (auto s = meta.find("stride"); s != meta.end()) d->stride_ = std::max(1, parse_int_field(s->second, field("stride")));
  else throw_error(ErrorKind::unsupported, field("stride") + " is missing" + kNotUltralytics);

  const OnnxGraph& g = d->model_.graph;
  const OnnxValueInfo* input = nullptr;
  for (const OnnxValueInfo& vi : g.inputs) {
    const bool is_weight = std::any_of(g.initializers.begin(), g.initializers.end(),
                                       [&](const OnnxTensor& t) { return t.name == vi.name; });
    if (is_weight) continue;
    MMFUSE_CHECK(!input, unsupported, d->source_ + ": graph.input: more than one input" + kNotUltralytics);
    input = &vi;
  }
  MMFUSE_CHECK(input && input->has_shape && input->shape.size() == 4, unsupported,
               d->source_ + ": graph.input: expected one (batch, 3, height, width) input" + kNotUltralytics);
  MMFUSE_CHECK(input->shape[1] == 3 && (input->shape[0] == 1 || input->shape[0] < 0), unsupported,
               d->source_ + ": graph.input '" + input->name + "': expected batch 1 and 3 channels" + kNotUltralytics);
  d->dynamic_ = input->shape[2] < 0 || input->shape[3] < 0;
  if (!d->dynamic_) {
    d->default_h_ = static_cast<int>(input->shape[2]);
    d->default_w_ = static_cast<int>(input->shape[3]);
  } else if (auto s = meta.find("imgsz"); s != meta.end()) {
    std::tie(d->default_h_, d->default_w_) = parse_yolo_imgsz(s->second, field("imgsz"));
  }
  MMFUSE_CHECK(!g.outputs.empty(), unsupported, d->source_ + ": graph.output: none" + kNotUltralytics);
  d->pool_ = pool_or_own(options.pool);

  // Plan the default size now: unsupported ops and wrong output shapes fail at open.
  const OnnxGraphRunner& r = d->runner_for(d->default_h_, d->default_w_);
  const std::vector<int64_t>& out = r.output_shape(0);
  const int64_t nc = static_cast<int64_t>(d->names_.size());
  MMFUSE_CHECK(out.size() == 3 && out[0] == 1, unsupported,
               d->source_ + ": graph.output[0] has rank " + std::to_string(out.size()) +
                   ", expected (1, 4 + classes, anchors) or (1, boxes, 5 + classes)" + kNotUltralytics);
  if (out[1] == 4 + nc) d->layout_ = YoloLayout::anchor_free;
  else if (out[2] == 5 + nc) d->layout_ = YoloLayout::objectness;
  else
    throw_error(ErrorKind::unsupported, d->source_ + ": graph.output[0] is (1, " + std::to_string(out[1]) + ", " +
                                            std::to_string(out[2]) + "), which fits neither (1, 4 + " +
                                            std::to_string(nc) + ", anchors) nor (1, boxes, 5 + " + std::to_string(nc) +
                                            ") for the " + std::to_string(nc) + " names" + kNotUltralytics);
  return d;
}

const OnnxGraphRunner& YoloDetector::runner_for(int h, int w) const {
  std::lock_guard<std::mutex> lock(runners_mutex_);
  auto& slot = runners_[{h, w}];
  if (!slot) slot = std::make_unique<OnnxGraphRunner>(model_, std::vector<int64_t>{1, 3, h, w}, pool_->size(),
                                                        /*input_nhwc=*/true);
  return *slot;
}

std::string YoloDetector::summary() const { return runner_for(default_h_, default_w_).summary(); }

std::vector<Detection> YoloDetector::detect(const Image& image, const DetectOptions& o, DetectTimings* timings) const {
  using Clock = std::chrono::steady_clock;
  auto ms_since = [](Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); };
  int h = o.imgsz_h > 0 ? o.imgsz_h : default_h_, w = o.imgsz_w > 0 ? o.imgsz_w : (o.imgsz_h > 0 ? o.imgsz_h : default_w_);
  MMFUSE_CHECK(o.imgsz_h >= 0 && o.imgsz_w >= 0, bad_input, "imgsz: must be positive");
  // Ultralytics' check_imgsz: sizes are rounded up to a multiple of the stride.
  h = (h + stride_ - 1) / stride_ * stride_;
  w = (w + stride_ - 1) / stride_ * stride_;
  MMFUSE_CHECK(dynamic_ || (h == default_h_ && w == default_w_), bad_input,
               "imgsz: " + source_ + " was exported for " + std::to_string(default_h_) + "x" + std::to_string(default_w_) +
                   " input (static shape), not " + std::to_string(h) + "x" + std::to_string(w));
  MMFUSE_CHECK(o.conf >= 0 && o.conf <= 1 && o.iou >= 0 && o.iou <= 1 && o.max_det >= 0, bad_input,
               "detect options: conf and iou must be in [0, 1], max_det >= 0");
  const OnnxGraphRunner& runner = runner_for(h, w);
  auto t0 = Clock::now();
  // Interleaved floats: the first convolution reads them without a reorder.
  const Letterboxed in = letterbox(image, h, w, true, LetterboxLayout::hwc);
  if (timings) timings->letterbox_ms = ms_since(t0);
  t0 = Clock::now();
  std::vector<std::vector<float>> outputs = runner.run(in.hwc.data());
  if (timings) timings->network_ms = ms_since(t0);
  t0 = Clock::now();
  const std::vector<int64_t>& shape = runner.output_shape(0);
  NmsOptions nms;
  nms.conf = o.conf;
  nms.iou = o.iou;
  nms.max_det = o.max_det;
  nms.agnostic = o.agnostic;
  nms.classes = o.classes;
  std::vector<RawDetection> raw = yolo_nms(outputs[0].data(), layout_, shape[1], shape[2], nms);
  std::vector<float> boxes(raw.size() * 4);
  for (size_t i = 0; i < raw.size(); ++i) std::copy(raw[i].box, raw[i].box + 4, boxes.begin() + i * 4);
  // Objectness exports come from YOLOv5, whose predictor does not round the padding.
  scale_boxes_to_image(boxes.data(), raw.size(), h, w, image.height, image.width,
                       layout_ != YoloLayout::objectness);
  std::vector<Detection> out;
  for (size_t i = 0; i < raw.size(); ++i) {
    Detection d;
    d.class_id = raw[i].class_id;
    d.class_name = d.class_id < static_cast<int>(names_.size()) ? names_[d.class_id] : std::to_string(d.class_id);
    d.score = raw[i].score;
    d.x1 = boxes[i * 4];
    d.y1 = boxes[i * 4 + 1];
    d.x2 = boxes[i * 4 + 2];
    d.y2 = boxes[i * 4 + 3];
    out.push_back(std::move(d));
  }
  if (timings) timings->nms_ms = ms_since(t0);
  return out;
}

}  // namespace mmfuse
