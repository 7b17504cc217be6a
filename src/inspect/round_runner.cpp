// PlantRunner (see round_runner.h).
#include "inspect/round_runner.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <mutex>
#include <set>

#include "core/utc_time.h"
#include "mmfuse/error.h"

namespace mmfuse::inspect {

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

std::string new_round_id() {
  const UtcTime u = utc_time(now_ms());
  char buf[96];  // room for any int fields, which silences -Wformat-truncation
  std::snprintf(buf, sizeof buf, "r%04d%02d%02dT%02d%02d%02d%03dZ", u.year, u.month, u.day, u.hour,
                u.minute, u.second, u.millisecond);
  return buf;
}

PlantRunner::PlantRunner(PlantConfig plant, ThreadPool& pool,
                         const std::function<void(const std::string&)>& progress, Fitting fitting)
    : plant_(std::move(plant)), pool_(pool), progress_(progress) {
  for (size_t d = 0; d < plant_.devices.size(); ++d) {
    device_points_.emplace_back(slots_.size(), slots_.size() + plant_.devices[d].points.size());
    for (size_t p = 0; p < plant_.devices[d].points.size(); ++p) {
      slots_.push_back(std::make_unique<Slot>());
      slots_.back()->device = d;
      slots_.back()->point = p;
    }
  }
  // One point per core; each fit runs single-threaded inside its task.
  if (fitting == Fitting::eager)
    pool_.parallel_tasks(slots_.size(), [&](size_t i, int) { fitted(i); });
}

const PointInspector& PlantRunner::fitted(size_t i) {
  Slot& s = *slots_[i];
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.inspector) {
    ThreadPool single(1);
    const DeviceConfig& dev = plant_.devices[s.device];
    s.inspector = std::make_unique<PointInspector>(plant_, dev, dev.points[s.point],
                                                   plant_.data_dir / "models", single);
    if (progress_) {
      std::lock_guard<std::mutex> plock(progress_mutex_);
      for (const std::string& e : s.inspector->setup_errors())
        progress_("setup error: " + dev.id + "/" + dev.points[s.point].id + ": " + e);
    }
  }
  return *s.inspector;
}

const PointInspector* PlantRunner::find(const std::string& device, const std::string& point) {
  for (size_t i = 0; i < slots_.size(); ++i) {
    const DeviceConfig& d = plant_.devices[slots_[i]->device];
    if (d.id == device && d.points[slots_[i]->point].id == point) return &fitted(i);
  }
  return nullptr;
}

std::vector<std::string> PlantRunner::setup_errors() const {
  std::vector<std::string> out;
  for (const auto& s : slots_) {
    std::lock_guard<std::mutex> lock(s->mutex);
    if (!s->inspector) continue;
    for (const std::string& e : s->inspector->setup_errors())
      out.push_back(s->inspector->device_id() + "/" + s->inspector->point_id() + ": " + e);
  }
  return out;
}

size_t PlantRunner::fitted_points() const {
  size_t n = 0;
  for (const auto& s : slots_) {
    std::lock_guard<std::mutex> lock(s->mutex);
    n += s->inspector != nullptr;
  }
  return n;
}

RoundSummary PlantRunner::run_round(const std::string& round_id,
                                    const std::vector<std::pair<std::string, std::string>>& done,
                                    const std::function<void(const DeviceOutcome&)>& on_device,
                                    size_t max_devices) {
  const std::set<std::pair<std::string, std::string>> skip(done.begin(), done.end());
  std::vector<size_t> due_devices;
  std::vector<std::vector<size_t>> due_points;
  for (size_t d = 0; d < plant_.devices.size(); ++d) {
    std::vector<size_t> pts;
    for (size_t i = device_points_[d].first; i < device_points_[d].second; ++i)
      if (!skip.count({plant_.devices[d].id, plant_.devices[d].points[slots_[i]->point].id}))
        pts.push_back(i);
    if (pts.empty()) continue;
    if (max_devices > 0 && due_devices.size() >= max_devices) break;
    due_devices.push_back(d);
    due_points.push_back(std::move(pts));
  }
  RoundSummary s;
  s.round_id = round_id;
  for (const DeviceConfig& d : plant_.devices) {
    bool all = true;
    for (const PointConfig& p : d.points) all = all && skip.count({d.id, p.id}) > 0;
    s.skipped += all ? 1 : 0;
  }
  std::vector<DeviceOutcome> outcomes(due_devices.size());
  std::vector<char> finished(due_devices.size(), 0);
  InspectOptions opt;
  opt.round_id = round_id;
  opt.evidence_dir = plant_.data_dir / "evidence";
  opt.evidence = plant_.evidence;
  std::mutex sink_mutex;
  const auto t0 = std::chrono::steady_clock::now();
  pool_.parallel_tasks(due_devices.size(), [&](size_t k, int) {
    const size_t d = due_devices[k];
    DeviceOutcome& o = outcomes[k];
    o.device_id = plant_.devices[d].id;
    const auto start = std::chrono::steady_clock::now();
    for (size_t i : due_points[k]) {
      const PointInspector& p = fitted(i);  // fits it here the first time when lazy
      o.records.push_back(p.inspect(p.gather(), opt));
      o.alarm = o.alarm || o.records.back().alarm;
    }
    o.latency_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (on_device) {
      std::lock_guard<std::mutex> lock(sink_mutex);
      on_device(o);
    }
    finished[k] = 1;
  });
  s.wall_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::vector<double> lat;
  for (size_t k = 0; k < outcomes.size(); ++k) {
    MMFUSE_ASSERT(finished[k]);
    const DeviceOutcome& o = outcomes[k];
    lat.push_back(o.latency_ms);
    s.points += o.records.size();
    for (const InspectionRecord& r : o.records) {
      s.alarms += r.alarm ? 1 : 0;
      for (const ModalityResult& m : r.modalities)
        s.modality_errors += m.status == ModalityStatus::error;
    }
  }
  s.devices = outcomes.size();
  s.p50_ms = percentile(lat, 0.50);
  s.p95_ms = percentile(lat, 0.95);
  s.max_ms = lat.empty() ? 0.0 : *std::max_element(lat.begin(), lat.end());
  s.outcomes = std::move(outcomes);
  return s;
}

}  // namespace mmfuse::inspect
