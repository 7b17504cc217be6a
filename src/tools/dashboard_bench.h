// Measurement for `mmfuse store dashboard-bench`: fills a store with weeks of synthetic
// history (Store::generate_history) and times every store query the web dashboard's
// API routes make (src/server/routes_plant.cpp, as web/src/main.ts calls them), p50 and
// p95 over many calls, on SQLite or PostgreSQL.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "store/store.h"

namespace mmfuse::store {

struct DashboardBenchOptions {
  StoreLocation where;
  bool load = true;   // false: measure a store loaded before (same spec)
  HistorySpec history;
  int calls = 200;    // timed calls per query (fewer for the whole-table counts)
};

// {"backend", "load": {"seconds", "rounds", "inspections", "alarms", "readings"} (when
//  loaded), "counts": {...}, "db_bytes", "queries": {name: {"route", "calls", "p50_ms",
//  "p95_ms", "max_ms", "client_cpu_p50_ms", "rows"}}}
nlohmann::ordered_json bench_dashboard(const DashboardBenchOptions& options);

}  // namespace mmfuse::store
