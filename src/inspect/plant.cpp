// Reads the plant YAML into PlantConfig. Each value is read through a small
// cursor that knows its field path and YAML line, so every error says where
// it is; unknown keys are errors too (a typo must not silently drop a setting).
#include "inspect/plant.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "detect/pipeline.h"
#include "mmfuse/error.h"
#include "vision/image_files.h"

namespace mmfuse::inspect {

namespace {

class Cursor {
 public:
  Cursor(const YAML::Node& node, std::string path, const std::string& file, int line)
      : node_(node), path_(std::move(path)), file_(file), line_(line) {
    if (node_.IsDefined() && node_.Mark().line >= 0) line_ = node_.Mark().line + 1;
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw_error(ErrorKind::bad_input,
                file_ + ":" + std::to_string(line_) + ": " + path_ + ": " + what);
  }
  const std::string& path() const { return path_; }
  bool defined() const { return node_.IsDefined() && !node_.IsNull(); }

  // A mapping whose keys must all be in `allowed`.
  void expect_map(std::initializer_list<const char*> allowed) const {
    if (!node_.IsMap()) fail("expected a mapping");
    const std::set<std::string> ok(allowed.begin(), allowed.end());
    for (const auto& kv : node_) {
      const std::string key = kv.first.as<std::string>();
      if (!ok.count(key)) {
        std::string list;
        for (const char* k : allowed) list += (list.empty() ? "" : ", ") + std::string(k);
        Cursor(kv.first, path_ + (path_.empty() ? "" : ".") + key, file_, line_)
            .fail("unknown key (expected one of: " + list + ")");
      }
    }
  }
  Cursor operator[](const std::string& key) const {
    return Cursor(node_[key], path_.empty() ? key : path_ + "." + key, file_, line_);
  }
  size_t size() const { return node_.size(); }
  Cursor at(size_t i) const {
    return Cursor(node_[i], path_ + "[" + std::to_string(i) + "]", file_, line_);
  }
  bool is_sequence() const { return node_.IsSequence(); }
  bool is_map() const { return node_.IsMap(); }
  std::vector<std::string> keys() const {
    std::vector<std::string> out;
    for (const auto& kv : node_) out.push_back(kv.first.as<std::string>());
    return out;
  }

  std::string str() const {
    if (!defined()) fail("required");
    if (!node_.IsScalar()) fail("expected a string");
    return node_.Scalar();
  }
  std::string str_or(const std::string& fallback) const { return defined() ? str() : fallback; }
  double number() const {
    if (!defined()) fail("required");
    if (!node_.IsScalar()) fail("expected a number");
    double v = 0.0;
    try {
      v = node_.as<double>();
    } catch (const YAML::Exception&) {
      fail("expected a number, got '" + node_.Scalar() + "'");
    }
    if (!std::isfinite(v)) fail("must be finite");
    return v;
  }
  double number_in(double fallback, double lo, double hi) const {
    const double v = defined() ? number() : fallback;
    if (v < lo || v > hi)
      fail("must be in [" + short_num(lo) + ", " + short_num(hi) + "], got " + short_num(v));
    return v;
  }
  long long integer_in(long long fallback, long long lo, long long hi) const {
    if (!defined()) return fallback;
    const double v = number();
    if (v != std::floor(v)) fail("expected an integer");
    if (v < static_cast<double>(lo) || v > static_cast<double>(hi))
      fail("must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return static_cast<long long>(v);
  }
  bool boolean_or(bool fallback) const {
    if (!defined()) return fallback;
    try {
      return node_.as<bool>();
    } catch (const YAML::Exception&) {
      fail("expected true or false");
    }
  }
  fs::path path_value(const fs::path& base) const {
    const std::string s = str();
    if (s.empty()) fail("must not be empty");
    fs::path p(s);
    return p.is_absolute() ? p : (base / p).lexically_normal();
  }
  // One path or a list of paths.
  std::vector<fs::path> paths(const fs::path& base) const {
    std::vector<fs::path> out;
    if (node_.IsSequence()) {
      for (size_t i = 0; i < size(); ++i) out.push_back(at(i).path_value(base));
      if (out.empty()) fail("must list at least one path");
    } else {
      out.push_back(path_value(base));
    }
    return out;
  }

 private:
  static std::string short_num(double v) {
    std::ostringstream s;
    s << v;
    return s.str();
  }
  YAML::Node node_;
  std::string path_;
  const std::string& file_;
  int line_;
};

void check_id(const Cursor& c, const std::string& id) {
  if (id.empty()) c.fail("must not be empty");
  for (char ch : id)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.'))
      c.fail("'" + id + "' may only hold letters, digits, '-', '_' and '.'");
}

// The `id` of a device or point: well-formed and not seen before among its siblings.
std::string unique_id(const Cursor& item, std::set<std::string>& seen, const char* kind) {
  std::string id = item["id"].str();
  check_id(item["id"], id);
  if (!seen.insert(id).second)
    item["id"].fail("duplicate " + std::string(kind) + " id '" + id + "'");
  return id;
}

void require_list(const Cursor& c, const char* what) {
  if (!c.defined() || !c.is_sequence() || c.size() == 0)
    c.fail(std::string("required: a list of ") + what);
}

YoloCameraConfig parse_yolo(const Cursor& c, const fs::path& base) {
  if (!c.defined()) c.fail("required by detector yolo (at least `model: FILE.onnx`)");
  c.expect_map({"model", "conf", "iou", "imgsz", "threshold", "class_thresholds", "alarm_types"});
  YoloCameraConfig y;
  y.model = c["model"].path_value(base);
  std::error_code ec;
  if (!fs::is_regular_file(y.model, ec)) c["model"].fail("no such file: " + y.model.string());
  y.conf = c["conf"].number_in(y.conf, 0.0, 1.0);
  y.iou = c["iou"].number_in(y.iou, 0.0, 1.0);
  y.imgsz = static_cast<int>(c["imgsz"].integer_in(0, 32, 8192));
  if (y.imgsz % 32 != 0) c["imgsz"].fail("must be a multiple of 32");
  y.threshold = c["threshold"].number_in(y.threshold, 0.0, 1.0);
  if (const Cursor t = c["class_thresholds"]; t.defined()) {
    // Keys are checked against the model's classes when the model is opened.
    if (!t.is_map()) t.fail("expected a mapping of class name -> threshold");
    for (const std::string& name : t.keys()) y.class_thresholds[name] = t[name].number_in(0, 0, 1);
  }
  if (const Cursor a = c["alarm_types"]; a.defined()) {
    if (!a.is_map()) a.fail("expected a mapping of class name -> alarm type");
    for (const std::string& name : a.keys()) {
      const std::string type = a[name].str();
      if (type.empty()) a[name].fail("must not be empty (\"ignore\" drops the class)");
      y.alarm_types[name] = type;
    }
  }
  return y;
}

AnomalyCameraConfig parse_anomaly(const Cursor& c, const fs::path& base) {
  if (!c.defined()) c.fail("required by detector anomaly (at least `good_photos: FOLDER`)");
  c.expect_map({"good_photos", "false_alarm_rate", "backbone"});
  AnomalyCameraConfig a;
  const Cursor g = c["good_photos"];
  if (!g.defined()) g.fail("required (a folder of photos of good parts)");
  a.good_photos = g.paths(base);
  // Checked here so a plant with no good photos fails at start, naming the
  // field. Counting stops at 2 photos or after kMaxListed entries (a huge
  // folder is left to the fit), so loading a plant stays cheap.
  constexpr size_t kMaxListed = 20000;
  size_t photos = 0, listed = 0;
  for (const fs::path& p : a.good_photos) {
    std::error_code ec;
    const auto st = fs::status(p, ec);
    if (!fs::exists(st)) g.fail("no such file or folder: " + p.string());
    if (!fs::is_directory(st)) {
      if (!has_image_file_extension(p)) g.fail("not an image file: " + p.string());
      ++photos;
      continue;
    }
    fs::recursive_directory_iterator it(p, fs::directory_options::skip_permission_denied, ec), end;
    for (; !ec && it != end && photos < 2 && listed < kMaxListed; it.increment(ec), ++listed)
      if (it->is_regular_file(ec) && has_image_file_extension(it->path())) ++photos;
    if (listed >= kMaxListed) photos = std::max<size_t>(photos, 2);
  }
  if (photos == 0) g.fail("no image files found");
  if (photos < 2) g.fail("at least 2 good photos are needed (found 1)");
  a.false_alarm_rate = c["false_alarm_rate"].number_in(a.false_alarm_rate, 0.001, 0.5);
  if (c["backbone"].defined()) {
    a.backbone = c["backbone"].path_value(base);
    std::error_code ec;
    if (!fs::is_directory(a.backbone, ec)) c["backbone"].fail("no such model folder: " + a.backbone.string());
  }
  return a;
}

CameraConfig parse_camera(const Cursor& c, const fs::path& base) {
  c.expect_map({"image", "golden", "detector", "yolo", "anomaly", "width", "height", "blur_sigma",
                "diff_threshold", "noise_k", "min_diff", "min_area", "tolerance_px",
                "max_shift_px"});
  CameraConfig k;
  k.source = c["image"].path_value(base);
  const Cursor d = c["detector"];
  if (d.defined()) {
    k.detectors.clear();
    const size_t n = d.is_sequence() ? d.size() : 1;
    for (size_t i = 0; i < n; ++i) {
      const Cursor one = d.is_sequence() ? d.at(i) : d;
      const std::string name = one.str();
      if (name != "golden_diff" && name != "yolo" && name != "anomaly")
        one.fail("unknown detector '" + name + "' (available: golden_diff, yolo, anomaly)");
      if (std::find(k.detectors.begin(), k.detectors.end(), name) != k.detectors.end())
        one.fail("detector '" + name + "' listed twice");
      k.detectors.push_back(name);
    }
    if (k.detectors.empty()) d.fail("must list at least one detector");
  }
  const auto uses = [&](const char* name) {
    return std::find(k.detectors.begin(), k.detectors.end(), name) != k.detectors.end();
  };
  if (uses("golden_diff")) k.golden = c["golden"].path_value(base);
  if (uses("yolo")) k.yolo = parse_yolo(c["yolo"], base);
  else if (c["yolo"].defined()) c["yolo"].fail("given, but `detector` does not list yolo");
  if (uses("anomaly")) k.anomaly = parse_anomaly(c["anomaly"], base);
  else if (c["anomaly"].defined()) c["anomaly"].fail("given, but `detector` does not list anomaly");
  k.width = static_cast<int>(c["width"].integer_in(k.width, 32, 8192));
  k.height = static_cast<int>(c["height"].integer_in(k.height, 32, 8192));
  k.blur_sigma = c["blur_sigma"].number_in(k.blur_sigma, 0.0, 10.0);
  k.diff_threshold = c["diff_threshold"].number_in(k.diff_threshold, 0.0, 255.0);
  k.noise_k = c["noise_k"].number_in(k.noise_k, 1.0, 50.0);
  k.min_diff = c["min_diff"].number_in(k.min_diff, 1.0, 255.0);
  k.min_area = static_cast<int>(c["min_area"].integer_in(k.min_area, 1, 1 << 24));
  k.tolerance_px = static_cast<int>(c["tolerance_px"].integer_in(k.tolerance_px, 0, 10));
  k.max_shift_px = static_cast<int>(c["max_shift_px"].integer_in(k.max_shift_px, 0, 1000));
  return k;
}

InfraredConfig parse_infrared(const Cursor& c, const fs::path& base) {
  c.expect_map({"image", "calibration", "hot_threshold_c", "min_area"});
  InfraredConfig k;
  k.source = c["image"].path_value(base);
  const Cursor cal = c["calibration"];
  if (!cal.defined()) cal.fail("required (a and b of T = a * pixel + b)");
  cal.expect_map({"a", "b"});
  k.a = cal["a"].number();
  if (k.a == 0.0) cal["a"].fail("must not be 0");
  k.b = cal["b"].number();
  k.hot_threshold_c = c["hot_threshold_c"].number_in(k.hot_threshold_c, -273.15, 3000.0);
  k.min_area = static_cast<int>(c["min_area"].integer_in(k.min_area, 1, 1 << 24));
  return k;
}

SoundConfig parse_sound(const Cursor& c, const fs::path& base) {
  c.expect_map({"audio", "baseline", "threshold_sigma"});
  SoundConfig k;
  k.source = c["audio"].path_value(base);
  if (!c["baseline"].defined()) c["baseline"].fail("required (normal recordings to fit on)");
  k.baseline = c["baseline"].paths(base);
  k.threshold_sigma = c["threshold_sigma"].number_in(k.threshold_sigma, 0.0, 100.0);
  return k;
}

sensor::RegisterSpec parse_register(const Cursor& c) {
  try {
    return sensor::parse_register_spec(c.str());
  } catch (const Error& e) {
    c.fail(e.what());
  }
}

SensorsConfig parse_sensors(const Cursor& c, const fs::path& base) {
  c.expect_map(
      {"csv", "modbus", "baseline", "method", "smooth", "min_anomalous_rows", "flatline_rows",
       "slow_channels"});
  SensorsConfig k;
  if (c["csv"].defined() == c["modbus"].defined()) c.fail("give exactly one source: csv or modbus");
  if (c["csv"].defined()) k.csv = c["csv"].path_value(base);
  if (c["modbus"].defined()) {
    const Cursor m = c["modbus"];
    m.expect_map({"host", "port", "unit_id", "rate_hz", "seconds", "registers"});
    ModbusSourceConfig mb;
    mb.options.host = m["host"].str_or(mb.options.host);
    mb.options.port = static_cast<int>(m["port"].integer_in(502, 1, 65535));
    mb.options.unit_id = static_cast<int>(m["unit_id"].integer_in(1, 0, 255));
    mb.options.rate_hz = m["rate_hz"].number_in(10.0, 0.1, 1000.0);
    mb.seconds = m["seconds"].number_in(mb.seconds, 0.1, 3600.0);
    const Cursor regs = m["registers"];
    if (!regs.defined() || !regs.is_sequence() || regs.size() == 0)
      regs.fail("required: a list of NAME:ADDRESS[:kind][:format][:swap][:scale[:offset]]");
    for (size_t i = 0; i < regs.size(); ++i)
      mb.options.registers.push_back(parse_register(regs.at(i)));
    k.modbus = mb;
  }
  k.baseline = c["baseline"].path_value(base);
  k.method = c["method"].str_or(k.method);
  const auto& methods = sensor::pipeline_method_names();
  if (k.method != "auto" && std::find(methods.begin(), methods.end(), k.method) == methods.end())
    c["method"].fail("unknown method '" + k.method +
                     "' (iforest, t2, pca, mset, ensemble, online, auto)");
  k.smooth =
      static_cast<size_t>(c["smooth"].integer_in(static_cast<long long>(k.smooth), 1, 10000));
  k.min_anomalous_rows = static_cast<size_t>(
      c["min_anomalous_rows"].integer_in(static_cast<long long>(k.min_anomalous_rows), 1, 1000000));
  k.slow_channels = c["slow_channels"].number_in(k.slow_channels, 0.0, 1.0);
  k.flatline_rows = static_cast<size_t>(
      c["flatline_rows"].integer_in(static_cast<long long>(k.flatline_rows), 0, 1000000));
  return k;
}

fusion::FusionConfig parse_fusion(const Cursor& c) {
  fusion::FusionConfig f;
  if (!c.defined()) return f;
  c.expect_map({"rule", "weights", "threshold", "renormalize"});
  f.rule = c["rule"].str_or(f.rule);
  if (f.rule != "weighted_vote" && f.rule != "weighted_score")
    c["rule"].fail("unknown rule '" + f.rule + "' (weighted_vote or weighted_score)");
  const Cursor w = c["weights"];
  if (w.defined()) {
    w.expect_map({"camera", "infrared", "sound", "sensors"});
    double sum = 0.0;
    for (Modality m : kAllModalities) {
      double& v = f.weights[static_cast<size_t>(m)];
      v = w[modality_name(m)].number_in(v, 0.0, 1.0);
      sum += v;
    }
    if (sum <= 0.0) w.fail("at least one weight must be > 0");
  }
  f.threshold = c["threshold"].number_in(f.threshold, 1e-6, 1.0);
  f.renormalize = c["renormalize"].boolean_or(f.renormalize);
  return f;
}

AlarmConfig parse_alarms(const Cursor& c) {
  AlarmConfig a;
  if (!c.defined()) return a;
  c.expect_map({"cooldown_s", "mqtt", "webhook"});
  a.cooldown_s = c["cooldown_s"].number_in(a.cooldown_s, 0.0, 365.0 * 86400.0);
  if (c["mqtt"].defined()) {
    const Cursor m = c["mqtt"];
    m.expect_map({"host", "port", "topic_prefix"});
    MqttSinkConfig q;
    q.host = m["host"].str_or(q.host);
    q.port = static_cast<int>(m["port"].integer_in(q.port, 1, 65535));
    q.topic_prefix = m["topic_prefix"].str_or(q.topic_prefix);
    if (q.topic_prefix.find_first_of("#+") != std::string::npos)
      m["topic_prefix"].fail("must not contain MQTT wildcards (# or +)");
    a.mqtt = q;
  }
  if (c["webhook"].defined()) {
    const Cursor h = c["webhook"];
    h.expect_map({"url", "timeout_s"});
    WebhookSinkConfig w;
    w.url = h["url"].str();
    if (w.url.rfind("http://", 0) != 0 && w.url.rfind("https://", 0) != 0)
      h["url"].fail("must start with http:// or https://");
    w.timeout_s = h["timeout_s"].number_in(w.timeout_s, 0.1, 600.0);
    a.webhook = w;
  }
  return a;
}

}  // namespace

size_t PlantConfig::point_count() const {
  size_t n = 0;
  for (const auto& d : devices) n += d.points.size();
  return n;
}

namespace {

PlantConfig parse_plant_impl(const std::string& yaml_text, const fs::path& file) {
  const std::string name = file.filename().string();
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    throw_error(ErrorKind::bad_input,
                name + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax error: " + e.msg);
  }
  const Cursor top(root, "", name, 1);
  if (!top.defined()) top.fail("the plant file is empty");
  if (!root.IsMap()) top.fail("expected a mapping at the top level");
  top.expect_map(
      {"plant", "data_dir", "retention_days", "evidence", "fusion", "alarms", "devices"});
  const fs::path base = fs::absolute(file).parent_path();
  PlantConfig p;
  p.file = fs::absolute(file);
  p.name = top["plant"].str_or(file.stem().string());
  p.data_dir = top["data_dir"].defined() ? top["data_dir"].path_value(base) : base / "mmfuse-data";
  p.retention_days = static_cast<int>(top["retention_days"].integer_in(7, 1, 3650));
  const std::string ev = top["evidence"].str_or("anomaly");
  if (ev == "always")
    p.evidence = EvidencePolicy::always;
  else if (ev == "anomaly")
    p.evidence = EvidencePolicy::anomaly;
  else if (ev == "never")
    p.evidence = EvidencePolicy::never;
  else
    top["evidence"].fail("expected always, anomaly or never, got '" + ev + "'");
  p.fusion = parse_fusion(top["fusion"]);
  p.alarms = parse_alarms(top["alarms"]);

  const Cursor devices = top["devices"];
  require_list(devices, "devices");
  std::set<std::string> device_ids;
  for (size_t i = 0; i < devices.size(); ++i) {
    const Cursor d = devices.at(i);
    d.expect_map({"id", "name", "area", "location", "points"});
    DeviceConfig dev;
    dev.id = unique_id(d, device_ids, "device");
    dev.name = d["name"].str_or(dev.id);
    dev.area = d["area"].str_or("");
    dev.location = d["location"].str_or("");
    const Cursor points = d["points"];
    require_list(points, "inspection points");
    std::set<std::string> point_ids;
    for (size_t j = 0; j < points.size(); ++j) {
      const Cursor pc = points.at(j);
      pc.expect_map({"id", "camera", "infrared", "sound", "sensors"});
      PointConfig pt;
      pt.id = unique_id(pc, point_ids, "point");
      if (pc["camera"].defined()) pt.camera = parse_camera(pc["camera"], base);
      if (pc["infrared"].defined()) pt.infrared = parse_infrared(pc["infrared"], base);
      if (pc["sound"].defined()) pt.sound = parse_sound(pc["sound"], base);
      if (pc["sensors"].defined()) pt.sensors = parse_sensors(pc["sensors"], base);
      if (!pt.camera && !pt.infrared && !pt.sound && !pt.sensors)
        pc.fail("a point needs at least one of camera, infrared, sound, sensors");
      dev.points.push_back(std::move(pt));
    }
    p.devices.push_back(std::move(dev));
  }
  return p;
}

}  // namespace

PlantConfig parse_plant(const std::string& yaml_text, const fs::path& file) {
  try {
    return parse_plant_impl(yaml_text, file);
  } catch (const YAML::Exception& e) {
    // Whatever yaml-cpp objects to (a mapping used as a key, nesting too deep...).
    throw_error(ErrorKind::bad_input,
                file.filename().string() + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

PlantConfig load_plant(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  MMFUSE_CHECK(in, not_found, "plant file '" + file.string() + "' cannot be opened");
  std::ostringstream s;
  s << in.rdbuf();
  return parse_plant(s.str(), file);
}

}  // namespace mmfuse::inspect
