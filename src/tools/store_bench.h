// Measurement for `mmfuse store bench`: how fast the store records inspections (each
// one transaction with its modality rows, readings and, for some, an alarm and outbox
// rows) and answers the dashboard's queries, on a real file in a given folder.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace mmfuse::store {

struct StoreBenchOptions {
  std::filesystem::path dir;  // an empty folder (the bench's data directory)
  int inspections = 2000;     // recorded inspections
  int readings = 600;         // sensor readings per inspection (60 s at 10 Hz)
  int devices = 500;
  double alarm_rate = 0.05;  // fraction of inspections that raise an alarm
  bool synchronous_full = true;
  std::string store_url;  // empty: SQLite in `dir`; else that store (an empty database)
  int writers = 1;        // threads recording at once, each with its own Store (connections)
};

// {"inspections", "readings_per_inspection", "devices", "backend", "writers", "synchronous",
//  "record": {"per_s", "p50_ms", "p95_ms", "max_ms"}, "db_bytes_per_inspection",
//  "queries_ms": {"device_status", "list_alarms_100", "list_inspections_100",
//  "sensor_trend_500", "outbox_backlog"}, "prune_ms", "pruned_inspections"}
nlohmann::ordered_json bench_store(const StoreBenchOptions& options);

}  // namespace mmfuse::store
