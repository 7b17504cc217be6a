// Inspection rounds over a whole plant: prepares one PointInspector per point
// (fitting baselines in parallel at start, or lazily: a point is fitted the first
// time it is inspected), then inspects every device once per round,
// devices spread over the cores of one pool (each device single-threaded, so
// --threads N means N busy cores). Records go to a sink (the store) as they finish.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "inspect/plant.h"
#include "inspect/point_inspector.h"

namespace mmfuse::inspect {

struct DeviceOutcome {
  std::string device_id;
  double latency_ms = 0.0;  // gather + inspect of all its points
  bool alarm = false;
  std::vector<InspectionRecord> records;  // one per point
};

struct RoundSummary {
  std::string round_id;
  size_t devices = 0, points = 0, skipped = 0;  // skipped: already done before a restart
  size_t alarms = 0, modality_errors = 0;
  double wall_ms = 0.0;
  double p50_ms = 0.0, p95_ms = 0.0, max_ms = 0.0;  // per-device latency
  std::vector<DeviceOutcome> outcomes;              // plant order, inspected devices only
};

// Linear-interpolated percentile (q in [0, 1]) of unsorted values; 0 when empty.
double percentile(std::vector<double> values, double q);

// When baselines are fitted. `eager`: all at construction (one process inspecting the
// whole plant: bad baselines show at start). `lazy`: a point is fitted the first time
// it is inspected or looked up, so a worker that shares rounds with others (or a
// `serve` replica) fits only the devices it is given, and starts at once.
enum class Fitting { eager, lazy };

class PlantRunner {
 public:
  // `progress` (optional) receives one line per notable event (setup errors, cache use);
  // with lazy fitting it is called from the thread that fitted the point (serialised).
  PlantRunner(PlantConfig plant, ThreadPool& pool,
              const std::function<void(const std::string&)>& progress = nullptr,
              Fitting fitting = Fitting::eager);

  const PlantConfig& plant() const { return plant_; }
  // The point's inspector, fitted first when lazy and not yet fitted (thread-safe);
  // nullptr when the plant has no such point.
  const PointInspector* find(const std::string& device, const std::string& point);
  // Setup errors of the points fitted so far (all of them when eager).
  std::vector<std::string> setup_errors() const;
  size_t fitted_points() const;

  // Inspects every point not in `done` ((device, point) pairs already recorded
  // in this round before a restart); a device with all points done is skipped.
  // max_devices > 0 stops after that many devices (the round stays open).
  // `on_device` is called once per finished device, from the worker that ran
  // it, serialised by a mutex (so a store need not be thread-safe); an
  // exception it throws aborts the round after the running devices finish.
  RoundSummary run_round(const std::string& round_id,
                         const std::vector<std::pair<std::string, std::string>>& done = {},
                         const std::function<void(const DeviceOutcome&)>& on_device = nullptr,
                         size_t max_devices = 0);

 private:
  struct Slot {
    size_t device = 0, point = 0;  // indices into plant_
    mutable std::mutex mutex;      // guards `inspector` (fitted once, under it)
    std::unique_ptr<PointInspector> inspector;
  };
  // Slot i's inspector, fitted now when it is not yet (single-threaded).
  const PointInspector& fitted(size_t i);

  PlantConfig plant_;
  ThreadPool& pool_;
  std::function<void(const std::string&)> progress_;
  std::mutex progress_mutex_;
  std::vector<std::unique_ptr<Slot>> slots_;              // plant order (devices, then points)
  std::vector<std::pair<size_t, size_t>> device_points_;  // [begin, end) into slots_ per device
};

// A sortable round id from the wall clock: "r20261129T074500123Z".
std::string new_round_id();

}  // namespace mmfuse::inspect
