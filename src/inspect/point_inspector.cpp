// Per-point inspection: each modality is judged independently (a failure in
// one is recorded as that modality's error, never stops the others), then the
// plant's fusion head decides.
#include "inspect/point_inspector.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "fusion/fusion.h"
#include "inspect/infrared.h"
#include "inspect/jpeg_io.h"
#include "inspect/png_io.h"
#include "inspect/sources.h"
#include "io/atomic_file.h"
#include "mmfuse/error.h"

namespace mmfuse::inspect {

namespace fs = std::filesystem;

namespace {

size_t idx(Modality m) {
  return static_cast<size_t>(m);
}

ModalityResult make_result(Modality m) {
  ModalityResult r;
  r.modality = m;
  return r;
}

ModalityResult error_result(Modality m, const std::string& message) {
  ModalityResult r = make_result(m);
  r.status = ModalityStatus::error;
  r.message = message;
  return r;
}

// Fills status, scores and decision from a raw ratio (>= 1 = anomaly).
void decide(ModalityResult& r, double raw, double ratio) {
  r.raw_score = raw;
  r.score = fusion::calibrate_ratio(ratio);
  r.decision = ratio >= 1.0;
  r.status = r.decision ? ModalityStatus::anomaly : ModalityStatus::ok;
}

std::optional<ModalityInput> read_source(const fs::path& source, SourceKind kind,
                                         std::string& error) {
  const auto file = resolve_source(source, kind);
  if (!file) return std::nullopt;
  try {
    return ModalityInput{file->string(), read_file_bytes(*file)};
  } catch (const std::exception& e) {
    error = e.what();
    return std::nullopt;
  }
}

// Keeps a copy of an in-memory input as evidence (uploads have no file of their own).
std::string keep_bytes(const fs::path& ev, const std::string& stem, const ModalityInput& in) {
  const std::string ext = fs::path(in.name).extension().string();
  const fs::path out = ev / (stem + (ext.empty() ? ".bin" : ext));
  write_file_atomic(out, in.bytes);
  return out.string();
}

}  // namespace

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

PointInspector::PointInspector(const PlantConfig& plant, const DeviceConfig& device,
                               const PointConfig& point, const fs::path& models_dir,
                               ThreadPool& pool)
    : device_id_(device.id), point_(point) {
  fusion_ = fusion::make_fusion_head(plant.fusion);
  fusion_rule_ = fusion_->name();
  const fs::path cache = models_dir.empty() ? fs::path() : models_dir / device.id / point.id;
  auto guard = [&](Modality m, auto&& fn) {
    try {
      fn();
    } catch (const std::exception& e) {
      setup_errors_[idx(m)] = e.what();
    }
  };
  if (point.camera)
    guard(Modality::camera, [&] {
      camera_ = make_defect_detector(*point.camera, pool,
                                     cache.empty() ? cache : cache / "camera_anomaly");
    });
  if (point.sound)
    guard(Modality::sound, [&] {
      sound_ =
          std::make_unique<SoundCheck>(*point.sound, cache.empty() ? cache : cache / "sound", pool);
    });
  if (point.sensors)
    guard(Modality::sensors, [&] { sensors_ = std::make_unique<SensorCheck>(*point.sensors); });
}

std::vector<std::string> PointInspector::setup_errors() const {
  std::vector<std::string> out;
  for (Modality m : kAllModalities)
    if (!setup_errors_[idx(m)].empty())
      out.push_back(std::string(modality_name(m)) + ": " + setup_errors_[idx(m)]);
  return out;
}

PointInputs PointInspector::gather() const {
  PointInputs in;
  if (point_.camera)
    in.camera = read_source(point_.camera->source, SourceKind::image,
                            in.read_errors[idx(Modality::camera)]);
  if (point_.infrared)
    in.infrared = read_source(point_.infrared->source, SourceKind::infrared,
                              in.read_errors[idx(Modality::infrared)]);
  if (point_.sound)
    in.sound =
        read_source(point_.sound->source, SourceKind::audio, in.read_errors[idx(Modality::sound)]);
  if (point_.sensors) {
    if (point_.sensors->modbus) {
      try {
        in.sensor_window = poll_sensor_window(*point_.sensors->modbus);
      } catch (const std::exception& e) {
        in.read_errors[idx(Modality::sensors)] = e.what();
      }
    } else {
      in.sensors =
          read_source(point_.sensors->csv, SourceKind::csv, in.read_errors[idx(Modality::sensors)]);
    }
  }
  return in;
}

ModalityResult PointInspector::run_camera(const PointInputs& in, const fs::path& ev,
                                          bool always) const {
  const Modality m = Modality::camera;
  ModalityResult r = make_result(m);
  if (!in.camera) return r;
  // JPEG photos decode straight to a reduced size (DCT scaling) when the detector
  // looks at a smaller normalised image anyway; boxes are mapped back to full pixels.
  const auto* bytes = reinterpret_cast<const uint8_t*>(in.camera->bytes.data());
  const CameraConfig& cc = *point_.camera;
  Image photo;
  int full_w = 0, full_h = 0;
  if (is_jpeg(bytes, in.camera->bytes.size()) && !camera_->wants_full_resolution()) {
    ScaledJpeg j =
        decode_jpeg_scaled(bytes, in.camera->bytes.size(), in.camera->name, cc.width, cc.height);
    photo = std::move(j.image);
    full_w = j.full_width;
    full_h = j.full_height;
  } else {
    photo = decode_image_memory(bytes, in.camera->bytes.size(), in.camera->name);
    full_w = photo.width;
    full_h = photo.height;
  }
  CameraFinding f = camera_->detect(photo);
  if (full_w != photo.width || full_h != photo.height) {
    const double sx = static_cast<double>(full_w) / photo.width,
                 sy = static_cast<double>(full_h) / photo.height;
    for (Defect& d : f.defects) {
      d.x = static_cast<int>(d.x * sx);
      d.y = static_cast<int>(d.y * sy);
      d.width = std::min(full_w - d.x, static_cast<int>(std::ceil(d.width * sx)));
      d.height = std::min(full_h - d.y, static_cast<int>(std::ceil(d.height * sy)));
    }
  }
  f.detail["decoded_size"] = {photo.width, photo.height};
  f.detail["image_size"] = {full_w, full_h};
  decide(r, f.raw_score, f.raw_score);
  nlohmann::json boxes = nlohmann::json::array();
  for (const Defect& d : f.defects) {
    nlohmann::json b = {{"type", d.type},
                        {"box", {d.x, d.y, d.width, d.height}},
                        {"confidence", d.confidence},
                        {"area", d.area}};
    if (d.model_class.empty()) b["mean_diff"] = d.mean_diff;
    else b["class"] = d.model_class;
    boxes.push_back(std::move(b));
  }
  r.alarm_type = f.alarm_type;
  r.detail = std::move(f.detail);
  r.detail["detector"] = camera_->name();
  r.detail["defects"] = std::move(boxes);
  if (f.defects.empty()) {
    r.message = "no defects";
  } else {
    r.message = std::to_string(f.defects.size()) + " defect(s)";
    if (f.alarm_type.empty())
      r.message += f.defects[0].type == "anomaly" ? " vs good photos" : " vs golden image";
    else r.message += ", strongest: " + f.alarm_type;
  }
  r.evidence.push_back(in.camera->name);
  if (!ev.empty() && (always || r.decision)) {
    const fs::path out = ev / (point_.id + "_camera.png");
    write_png(out, f.annotated.rgb.data(), f.annotated.width, f.annotated.height, 3, 8);
    r.evidence.push_back(out.string());
    if (!f.heatmap_png.empty()) {
      const fs::path heat = ev / (point_.id + "_camera_heatmap.png");
      write_file_atomic(heat, f.heatmap_png);
      r.evidence.push_back(heat.string());
    }
  }
  return r;
}

ModalityResult PointInspector::run_infrared(const PointInputs& in, const fs::path& ev,
                                            bool always) const {
  ModalityResult r = make_result(Modality::infrared);
  if (!in.infrared) return r;
  const InfraredConfig& c = *point_.infrared;
  const GrayFrame frame =
      decode_gray_png(reinterpret_cast<const uint8_t*>(in.infrared->bytes.data()),
                      in.infrared->bytes.size(), in.infrared->name);
  const bool save = !ev.empty();
  InfraredFinding f = analyze_infrared(frame, c, save);
  decide(r, f.max_c, f.raw_score);
  nlohmann::json regions = nlohmann::json::array();
  for (const HotRegion& h : f.regions)
    regions.push_back({{"box", {h.x, h.y, h.width, h.height}},
                       {"area", h.area},
                       {"max_c", h.max_c},
                       {"mean_c", h.mean_c},
                       {"centroid", {h.cx, h.cy}}});
  r.detail = {{"max_c", f.max_c},
              {"mean_c", f.mean_c},
              {"min_c", f.min_c},
              {"hot_threshold_c", c.hot_threshold_c},
              {"bit_depth", frame.bit_depth},
              {"regions", std::move(regions)}};
  char msg[96];
  std::snprintf(msg, sizeof msg, "%zu hot region(s), max %.1f C (threshold %.1f C)",
                f.regions.size(), f.max_c, c.hot_threshold_c);
  r.message = msg;
  r.evidence.push_back(in.infrared->name);
  if (save && (always || r.decision)) {
    const fs::path out = ev / (point_.id + "_infrared.png");
    write_png(out, f.overlay.rgb.data(), f.overlay.width, f.overlay.height, 3, 8);
    r.evidence.push_back(out.string());
  }
  return r;
}

ModalityResult PointInspector::run_sound(const PointInputs& in, const fs::path& ev,
                                         bool always) const {
  ModalityResult r = make_result(Modality::sound);
  if (!in.sound) return r;
  const SoundFinding f = sound_->judge(in.sound->bytes, in.sound->name);
  decide(r, f.score, f.threshold > 0 ? f.score / f.threshold : 0.0);
  r.detail = {{"score", f.score},
              {"threshold", f.threshold},
              {"seconds", f.seconds},
              {"detector", "sound_gaussian"}};
  char msg[96];
  std::snprintf(msg, sizeof msg, "sound score %.3g (threshold %.3g)", f.score, f.threshold);
  r.message = msg;
  if (fs::exists(in.sound->name)) {
    r.evidence.push_back(in.sound->name);
  } else if (!ev.empty() && (always || r.decision)) {
    r.evidence.push_back(keep_bytes(ev, point_.id + "_sound", *in.sound));
  }
  return r;
}

ModalityResult PointInspector::run_sensors(const PointInputs& in, const fs::path& ev,
                                           bool always) const {
  ModalityResult r = make_result(Modality::sensors);
  std::optional<SensorWindow> parsed;
  const SensorWindow* w = nullptr;
  if (in.sensor_window) {
    w = &*in.sensor_window;
  } else if (in.sensors) {
    parsed = parse_sensor_window(in.sensors->bytes, in.sensors->name);
    w = &*parsed;
  } else {
    return r;
  }
  const SensorFinding f = sensors_->judge(*w);
  decide(r, f.max_score, f.raw_score);
  r.detail = {{"rows", f.rows},
              {"anomalous_rows", f.anomalous_rows},
              {"max_score", f.max_score},
              {"threshold", f.threshold},
              {"method", point_.sensors->method}};
  // Window means per channel: what the store keeps as the readings of this inspection.
  nlohmann::json means = nlohmann::json::object();
  for (size_t c = 0; c < w->channels.size() && w->values.rows > 0; ++c) {
    double sum = 0.0;
    for (size_t row = 0; row < w->values.rows; ++row) sum += w->values(row, c);
    means[w->channels[c]] = sum / static_cast<double>(w->values.rows);
  }
  r.detail["channel_means"] = std::move(means);
  if (!f.stuck_channel.empty())
    r.detail["stuck"] = {{"channel", f.stuck_channel}, {"rows", f.stuck_rows}};
  char msg[160];
  if (!f.stuck_channel.empty())
    std::snprintf(msg, sizeof msg, "channel '%s' stuck for %zu rows; %zu/%zu rows anomalous",
                  f.stuck_channel.c_str(), f.stuck_rows, f.anomalous_rows, f.rows);
  else
    std::snprintf(msg, sizeof msg, "%zu/%zu rows anomalous (max score %.3g, threshold %.3g)",
                  f.anomalous_rows, f.rows, f.max_score, f.threshold);
  r.message = msg;
  if (in.sensors && fs::exists(in.sensors->name)) {
    r.evidence.push_back(in.sensors->name);
  } else if (!ev.empty() && (always || r.decision)) {
    if (in.sensors) r.evidence.push_back(keep_bytes(ev, point_.id + "_sensors", *in.sensors));
  }
  return r;
}

InspectionRecord PointInspector::inspect(const PointInputs& inputs,
                                         const InspectOptions& options) const {
  InspectionRecord rec;
  rec.round_id = options.round_id;
  rec.device_id = device_id_;
  rec.point_id = point_.id;
  rec.started_ms = now_ms();
  rec.fusion_rule = fusion_rule_;
  fs::path ev;
  if (!options.evidence_dir.empty() && options.evidence != EvidencePolicy::never)
    ev = options.evidence_dir / options.round_id / device_id_;
  const bool always = options.evidence == EvidencePolicy::always;
  if (!ev.empty()) fs::create_directories(ev);

  using Runner =
      ModalityResult (PointInspector::*)(const PointInputs&, const fs::path&, bool) const;
  const std::array<Runner, 4> runners = {&PointInspector::run_camera, &PointInspector::run_infrared,
                                         &PointInspector::run_sound, &PointInspector::run_sensors};
  const std::array<bool, 4> configured = {point_.camera.has_value(), point_.infrared.has_value(),
                                          point_.sound.has_value(), point_.sensors.has_value()};
  const std::array<bool, 4> ready = {camera_ != nullptr, true, sound_ != nullptr,
                                     sensors_ != nullptr};
  for (Modality m : kAllModalities) {
    const size_t i = idx(m);
    if (!configured[i]) {
      ModalityResult r = make_result(m);
      r.message = "not configured";
      rec.modalities.push_back(std::move(r));
      continue;
    }
    if (!ready[i]) {
      rec.modalities.push_back(error_result(m, "setup failed: " + setup_errors_[i]));
      continue;
    }
    if (!inputs.read_errors[i].empty()) {
      rec.modalities.push_back(error_result(m, inputs.read_errors[i]));
      continue;
    }
    try {
      const auto t0 = std::chrono::steady_clock::now();
      ModalityResult r = (this->*runners[i])(inputs, ev, always);
      if (r.status != ModalityStatus::missing)
        r.detail["ms"] =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count();
      if (r.status == ModalityStatus::missing && r.message.empty())
        r.message = "no data this round";
      rec.modalities.push_back(std::move(r));
    } catch (const std::exception& e) {
      rec.modalities.push_back(error_result(m, e.what()));
    }
  }
  const fusion::FusionResult fr = fusion_->fuse(rec.modalities);
  rec.fused_score = fr.score;
  rec.alarm = fr.alarm;
  rec.alarm_type = fr.alarm_type;
  rec.finished_ms = now_ms();
  return rec;
}

nlohmann::json record_to_json(const InspectionRecord& rec) {
  nlohmann::json mods = nlohmann::json::object();
  for (const ModalityResult& r : rec.modalities)
    mods[modality_name(r.modality)] = {{"status", modality_status_name(r.status)},
                                       {"score", r.score},
                                       {"raw_score", r.raw_score},
                                       {"decision", r.decision},
                                       {"message", r.message},
                                       {"alarm_type", r.alarm_type},
                                       {"evidence", r.evidence},
                                       {"detail", r.detail}};
  return {{"round_id", rec.round_id},       {"device_id", rec.device_id},
          {"point_id", rec.point_id},       {"started_ms", rec.started_ms},
          {"finished_ms", rec.finished_ms}, {"fusion_rule", rec.fusion_rule},
          {"fused_score", rec.fused_score}, {"alarm", rec.alarm},
          {"alarm_type", rec.alarm_type},   {"modalities", std::move(mods)}};
}

}  // namespace mmfuse::inspect
