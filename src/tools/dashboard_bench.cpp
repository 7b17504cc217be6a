// Dashboard query benchmark (dashboard_bench.h). Each timed query makes the store calls
// its HTTP route makes, with the parameters the web dashboard sends; the device asked
// about changes from call to call, so no answer is served from one warm page alone.
#include "tools/dashboard_bench.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <functional>

#include "mmfuse/error.h"

namespace fs = std::filesystem;

namespace mmfuse::store {

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// CPU time of this thread: what a query costs here when other work crowds the cores
// (PostgreSQL's own share runs in its server process and is not counted).
double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// The calls of GET /v1/devices/{id}/trend?since=...: the device, its channels, a
// 500-point trend per channel, and the fused scores of its inspections since then.
size_t trend_route(const Store& s, const std::string& device, int64_t since) {
  MMFUSE_CHECK(s.find_device(device).has_value(), internal, "bench: no device " + device);
  size_t rows = 0;
  for (const auto& c : s.sensor_channels(device)) rows += s.sensor_trend(device, c, since, 500).size();
  return rows + s.fused_trend(device, since, 500).size();
}

}  // namespace

nlohmann::ordered_json bench_dashboard(const DashboardBenchOptions& o) {
  MMFUSE_CHECK(o.calls >= 1, bad_input, "dashboard bench: calls must be >= 1");
  auto s = Store::open(o.where, StoreOptions{});
  nlohmann::ordered_json out;
  out["backend"] = s->backend_kind();
  if (o.load) {
    MMFUSE_CHECK(s->counts().inspections == 0, bad_input,
                 "dashboard bench: " + s->location() + " already holds inspections; give an empty "
                 "store (or --no-load to measure it as it is)");
    const auto t0 = std::chrono::steady_clock::now();
    const HistoryReport rep = s->generate_history(o.history);
    s->checkpoint();
    out["load"] = {{"seconds", ms_since(t0) / 1000.0}, {"rounds", rep.rounds},
                   {"inspections", rep.inspections}, {"alarms", rep.alarms},
                   {"readings", rep.readings}};
  }
  std::vector<std::string> devices;
  for (const auto& d : s->list_devices()) devices.push_back(d.id);
  MMFUSE_CHECK(!devices.empty(), bad_input, "dashboard bench: the store has no devices");
  const int64_t now = s->clock().now_ms();
  const int64_t hour = 3600'000;
  const int64_t today = now / kMsPerDay * kMsPerDay;

  struct Query {
    const char* name;
    const char* route;
    int calls;
    std::function<size_t(int)> run;  // call number -> rows answered
  };
  const int few = std::max(1, std::min(o.calls, 10));
  auto dev = [&](int i) { return devices[static_cast<size_t>(i * 7919) % devices.size()]; };
  std::vector<Query> queries = {
      {"device_status", "GET /v1/devices", o.calls, [&](int) { return s->device_status().size(); }},
      {"round_current", "GET /v1/rounds/current", o.calls,
       [&](int) { return s->list_rounds(1).size(); }},
      {"alarms_open_50", "GET /v1/alarms?acknowledged=false&limit=50", o.calls,
       [&](int) { return s->list_alarms({false, "", 0, 0, 50}).size(); }},
      {"alarms_acked_50", "GET /v1/alarms?acknowledged=true&limit=50", o.calls,
       [&](int) { return s->list_alarms({true, "", 0, 0, 50}).size(); }},
      {"stats_7d", "GET /v1/stats/alarms?days=7", o.calls,
       [&](int) { return s->alarm_stats(today - 6 * kMsPerDay).size(); }},
      {"stats_30d", "GET /v1/stats/alarms?days=30", o.calls,
       [&](int) { return s->alarm_stats(today - 29 * kMsPerDay).size(); }},
      {"device_trend_1h", "GET /v1/devices/{id}/trend?since=now-1h", o.calls,
       [&](int i) { return trend_route(*s, dev(i), now - hour); }},
      {"device_trend_24h", "GET /v1/devices/{id}/trend?since=now-24h", o.calls,
       [&](int i) { return trend_route(*s, dev(i), now - 24 * hour); }},
      {"device_trend_7d", "GET /v1/devices/{id}/trend?since=now-7d", o.calls,
       [&](int i) { return trend_route(*s, dev(i), now - 168 * hour); }},
      {"device_inspections_20", "GET /v1/inspections?device={id}&limit=20", o.calls,
       [&](int i) {
         InspectionFilter f;
         f.device_id = dev(i);
         f.limit = 20;
         return s->list_inspections(f).size();
       }},
      {"device_alarms_20", "GET /v1/alarms?device={id}&limit=20", o.calls,
       [&](int i) { return s->list_alarms({std::nullopt, dev(i), 0, 0, 20}).size(); }},
      {"inspections_100", "GET /v1/inspections", o.calls,
       [&](int) { return s->list_inspections({}).size(); }},
      {"outbox_backlog", "GET /readyz, store info", o.calls,
       [&](int) { return s->outbox_backlog().by_sink.size(); }},
      {"counts", "store info, GET /metrics (whole-table counts)", few,
       [&](int) {
         s->counts();
         return size_t{7};
       }},
  };
  nlohmann::ordered_json q;
  for (const auto& query : queries) {
    query.run(0);  // first call: connection and statement warm-up, not timed
    std::vector<double> t, cpu;
    size_t rows = 0;
    for (int i = 0; i < query.calls; ++i) {
      const double c0 = thread_cpu_ms();
      const auto t0 = std::chrono::steady_clock::now();
      rows = query.run(i + 1);
      t.push_back(ms_since(t0));
      cpu.push_back(thread_cpu_ms() - c0);
    }
    q[query.name] = {{"route", query.route},
                     {"calls", query.calls},
                     {"p50_ms", percentile(t, 0.5)},
                     {"p95_ms", percentile(t, 0.95)},
                     {"max_ms", percentile(t, 1.0)},
                     {"client_cpu_p50_ms", percentile(cpu, 0.5)},
                     {"rows", rows}};
  }
  out["counts"] = to_json(s->counts());
  if (std::string(s->backend_kind()) == "postgresql") {
    out["db_bytes"] = s->query_int("SELECT pg_database_size(current_database())");
  } else {
    std::error_code ec;
    int64_t bytes = 0;
    for (const char* suffix : {"", "-wal"}) {
      const auto n = fs::file_size(s->db_path().string() + suffix, ec);
      if (!ec) bytes += static_cast<int64_t>(n);
    }
    out["db_bytes"] = bytes;
  }
  out["queries"] = std::move(q);
  return out;
}

}  // namespace mmfuse::store
