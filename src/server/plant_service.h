// The plant side of the server: the inspection store (SQLite under the data
// folder), the plant's point inspectors for POST /v1/inspect, and the alarm
// outbox dispatcher (MQTT / webhook sinks from the plant file). Started by the
// server's loader thread (fitting baselines takes a while), stopped last with
// an outbox flush so alarms raised before SIGTERM still go out.
// Thread-safety: every method may be called from any thread once started.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "alarm/outbox_dispatcher.h"
#include "core/thread_pool.h"
#include "inspect/plant.h"
#include "inspect/point_inspector.h"
#include "inspect/round_runner.h"
#include "server/metrics.h"
#include "server/server_config.h"
#include "store/store.h"

namespace mmfuse::server {

class PlantService {
 public:
  // Reads the plant file (when configured) so its errors stop the start.
  // Inspections compute on `pool` (the server's cores).
  PlantService(const ServerConfig& config, std::shared_ptr<ThreadPool> pool);
  ~PlantService();

  // Opens the store, mirrors the plant's devices, prepares the inspectors and
  // starts the outbox dispatcher; registers the plant gauges on `metrics`.
  void start(Metrics& metrics);
  // Stops the dispatcher after delivering what can go now (graceful shutdown).
  void stop();

  bool has_plant() const { return plant_.has_value(); }
  const std::filesystem::path& data_dir() const { return data_dir_; }
  // Empty while the store answers (or before start()); else why it does not (the
  // database server is unreachable): /readyz is then false.
  std::string store_problem() const;
  // The store (503 before start() finished).
  store::Store& store();
  // The inspector of a device's point; 404 naming what is unknown.
  const inspect::PointInspector& inspector(const std::string& device, const std::string& point);
  // Records an inspection done through the API and wakes the dispatcher.
  store::RecordOutcome record(const inspect::InspectionRecord& record);

 private:
  std::shared_ptr<ThreadPool> pool_;
  std::filesystem::path data_dir_;
  store::StoreLocation location_;
  std::optional<inspect::PlantConfig> plant_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<inspect::PlantRunner> runner_;
  std::unique_ptr<alarm::OutboxDispatcher> dispatcher_;
  std::atomic<bool> started_{false};
  std::atomic<int64_t> inspections_{0}, alarms_{0};
};

}  // namespace mmfuse::server
