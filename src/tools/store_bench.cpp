// Store benchmark: record latency/throughput and dashboard query latency (store_bench.h).
#include "tools/store_bench.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include "alarm/alarm_payload.h"
#include "mmfuse/error.h"
#include "store/store.h"

namespace fs = std::filesystem;

namespace mmfuse::store {

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// Median of `n` runs of `f`, in ms.
template <class F>
double time_query(int n, F f) {
  std::vector<double> t;
  for (int i = 0; i < n; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(ms_since(t0));
  }
  return percentile(t, 0.5);
}

}  // namespace

nlohmann::ordered_json bench_store(const StoreBenchOptions& o) {
  MMFUSE_CHECK(o.inspections > 0 && o.devices > 0 && o.readings >= 0, bad_input,
               "store bench: inspections and devices must be > 0, readings >= 0");
  FakeClock clock(1'700'000'000'000);
  StoreOptions so;
  so.clock = &clock;
  so.sinks = {"mqtt", "webhook"};
  so.alarm_payload = alarm::alarm_payload;
  so.synchronous_full = o.synchronous_full;
  so.dedupe_cooldown_ms = 0;
  MMFUSE_CHECK(o.writers >= 1 && o.writers <= 64, bad_input, "store bench: writers must be 1..64");
  StoreLocation where = sqlite_location(o.dir);
  if (!o.store_url.empty()) {
    where = parse_store_url(o.store_url);
    where.data_dir = o.dir;
  }
  auto s = Store::open(where, so);
  // One store (its own connections) per writer, as separate processes would have.
  std::vector<std::unique_ptr<Store>> others;
  for (int w = 1; w < o.writers; ++w) others.push_back(Store::open(where, so));
  std::vector<DeviceInfo> devices;
  for (int d = 0; d < o.devices; ++d)
    devices.push_back({"dev-" + std::to_string(d), "Device " + std::to_string(d),
                       "area-" + std::to_string(d % 10), "", nlohmann::json::array()});
  s->upsert_devices(devices);
  auto round = s->begin_round(o.inspections);

  // Writer w records inspections w, w + writers, ...; each its own connection.
  std::vector<std::vector<double>> record_ms_of(static_cast<size_t>(o.writers));
  auto record_share = [&](int w, Store& st) {
    std::mt19937 rng(static_cast<unsigned>(1 + w));
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    auto& record_ms = record_ms_of[static_cast<size_t>(w)];
    for (int i = w; i < o.inspections; i += o.writers) {
      const std::string device = "dev-" + std::to_string(i % o.devices);
      inspect::InspectionRecord rec;
      rec.round_id = round.id;
      rec.device_id = device;
      rec.point_id = "p1";
      rec.started_ms = clock.now_ms();
      rec.finished_ms = clock.now_ms() + 300;
      rec.fusion_rule = "weighted_vote";
      rec.alarm = unit(rng) < o.alarm_rate;
      for (inspect::Modality m : inspect::kAllModalities) {
        inspect::ModalityResult x;
        x.modality = m;
        x.status = rec.alarm && m == inspect::Modality::camera ? inspect::ModalityStatus::anomaly
                                                               : inspect::ModalityStatus::ok;
        x.score = unit(rng);
        x.raw_score = x.score * 10;
        x.decision = x.status == inspect::ModalityStatus::anomaly;
        x.message = "bench";
        x.detail = {{"regions", 1}};
        x.evidence = {"evidence/" + round.id + "/" + device + "/" + inspect::modality_name(m) +
                      "-" + std::to_string(i) + ".png"};
        rec.modalities.push_back(std::move(x));
      }
      rec.fused_score = rec.alarm ? 0.4 : 0.1;
      rec.alarm_type = rec.alarm ? "camera" : "";
      std::vector<SensorReading> readings;
      readings.reserve(static_cast<size_t>(o.readings));
      for (int r = 0; r < o.readings; ++r)
        readings.push_back({device, "p1", r % 2 ? "temperature" : "vibration",
                            clock.now_ms() - 60'000 + 100 * (r / 2), 20.0 + unit(rng)});
      const auto t0 = std::chrono::steady_clock::now();
      st.record_inspection(rec, readings);
      record_ms.push_back(ms_since(t0));
      clock.advance_ms(1000);
    }
  };
  const auto all0 = std::chrono::steady_clock::now();
  {
    std::vector<std::thread> threads;
    for (int w = 1; w < o.writers; ++w)
      threads.emplace_back([&, w] { record_share(w, *others[static_cast<size_t>(w - 1)]); });
    record_share(0, *s);
    for (auto& t : threads) t.join();
  }
  std::vector<double> record_ms;
  for (const auto& v : record_ms_of) record_ms.insert(record_ms.end(), v.begin(), v.end());
  const double all_s = ms_since(all0) / 1000.0;

  s->checkpoint();
  std::error_code ec;
  uint64_t bytes = 0;
  if (where.kind == StoreKind::postgres) {
    bytes = static_cast<uint64_t>(s->query_int("SELECT pg_database_size(current_database())"));
  } else {
    for (const char* f : {"mmfuse.db", "mmfuse.db-wal"}) {
      const auto n = fs::file_size(o.dir / f, ec);
      if (!ec) bytes += n;
    }
  }

  nlohmann::ordered_json queries;
  queries["device_status"] = time_query(5, [&] { s->device_status(); });
  queries["list_alarms_100"] = time_query(5, [&] { s->list_alarms(); });
  queries["list_inspections_100"] = time_query(5, [&] { s->list_inspections(); });
  queries["sensor_trend_500"] =
      time_query(5, [&] { s->sensor_trend("dev-0", "temperature", 0, 500); });
  queries["outbox_backlog"] = time_query(5, [&] { s->outbox_backlog(); });

  // Retention over the older half (its outbox rows delivered first, as in service).
  for (const auto& row : s->list_outbox(0, 1 << 30)) s->mark_delivered(row.id, clock.now_ms());
  for (const auto& a : s->list_alarms({std::nullopt, "", 0, 0, 1 << 30}))
    s->acknowledge_alarm(a.id, "bench");
  clock.advance_ms(7 * kMsPerDay - static_cast<int64_t>(o.inspections / 2) * 1000);
  const auto p0 = std::chrono::steady_clock::now();
  const PruneReport rep = s->prune(7);
  const double prune_ms = ms_since(p0);

  nlohmann::ordered_json out;
  out["inspections"] = o.inspections;
  out["readings_per_inspection"] = o.readings;
  out["devices"] = o.devices;
  out["backend"] = s->backend_kind();
  out["writers"] = o.writers;
  out["synchronous"] = o.synchronous_full ? "FULL" : "NORMAL";
  out["record"] = {{"per_s", o.inspections / all_s},
                   {"p50_ms", percentile(record_ms, 0.5)},
                   {"p95_ms", percentile(record_ms, 0.95)},
                   {"max_ms", percentile(record_ms, 1.0)}};
  out["db_bytes_per_inspection"] = static_cast<double>(bytes) / o.inspections;
  out["queries_ms"] = std::move(queries);
  out["prune_ms"] = prune_ms;
  out["pruned_inspections"] = rep.inspections;
  return out;
}

}  // namespace mmfuse::store
