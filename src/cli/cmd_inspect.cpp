// `mmfuse inspect --plant plant.yaml [--once | --interval S]`: inspection
// rounds over every device of the plant, devices spread over --threads cores.
// Every inspection is recorded in the store under the plant's data_dir (one
// transaction each, alarms and their outbox rows included); a round
// interrupted by a crash or --max-devices is resumed by the next run. Alarms
// are delivered through the plant's sinks (MQTT, webhook) by the outbox
// dispatcher. Prints a summary per round (devices, alarms, latency p50/p95).
// On a PostgreSQL store (--store postgresql://...) any number of these processes
// share each round: they join the running round and claim its devices a few at a
// time under a lease (docs/scale-out.md). With --forward-to URL an edge box also
// forwards its store to a central one in the background (edge sync, same document).
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <set>
#include <thread>

#include <unistd.h>

#include "alarm/alarm_payload.h"
#include "alarm/mqtt_sink.h"
#include "alarm/outbox_dispatcher.h"
#include "alarm/webhook_sink.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "core/thread_pool.h"
#include "inspect/plant.h"
#include "inspect/round_runner.h"
#include "inspect/store_rows.h"
#include "mmfuse/error.h"
#include "store/edge_sync.h"
#include "store/store.h"

namespace mmfuse::cli {

using namespace mmfuse::inspect;

namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) {
  g_stop = true;
}

double round3(double v) {
  return std::round(v * 1000.0) / 1000.0;
}

Json summary_json(const RoundSummary& s, bool resumed, bool finished, bool with_records) {
  Json j;
  j["round_id"] = s.round_id;
  j["resumed"] = resumed;
  j["finished"] = finished;
  j["devices"] = s.devices;
  j["points"] = s.points;
  j["skipped"] = s.skipped;
  j["alarms"] = s.alarms;
  j["modality_errors"] = s.modality_errors;
  j["latency_ms"] = {
      {"p50", round3(s.p50_ms)}, {"p95", round3(s.p95_ms)}, {"max", round3(s.max_ms)}};
  j["round_ms"] = round3(s.wall_ms);
  Json alarms = Json::array();
  for (const DeviceOutcome& o : s.outcomes)
    for (const InspectionRecord& r : o.records)
      if (r.alarm)
        alarms.push_back({{"device", r.device_id},
                          {"point", r.point_id},
                          {"type", r.alarm_type},
                          {"fused_score", round3(r.fused_score)}});
  j["alarm_list"] = alarms;
  if (with_records) {
    Json recs = Json::array();
    for (const DeviceOutcome& o : s.outcomes)
      for (const InspectionRecord& r : o.records)
        recs.push_back(Json::parse(record_to_json(r).dump()));
    j["records"] = recs;
  }
  return j;
}

void print_plain(const RoundSummary& s, bool resumed, bool finished) {
  std::printf(
      "round %s%s: %zu devices (%zu points) inspected, %zu skipped, %zu alarms, %zu modality "
      "errors%s\n",
      s.round_id.c_str(), resumed ? " (resumed)" : "", s.devices, s.points, s.skipped, s.alarms,
      s.modality_errors, finished ? "" : " (round left open)");
  std::printf("  latency per device: p50 %.1f ms, p95 %.1f ms, max %.1f ms; round %.0f ms\n",
              s.p50_ms, s.p95_ms, s.max_ms, s.wall_ms);
  for (const DeviceOutcome& o : s.outcomes)
    for (const InspectionRecord& r : o.records)
      if (r.alarm)
        std::printf("  ALARM %s/%s: %s (fused %.2f)\n", r.device_id.c_str(), r.point_id.c_str(),
                    r.alarm_type.c_str(), r.fused_score);
  std::fflush(stdout);
}

// This process's name in the round's claims: host:pid.
std::string worker_name() {
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = 0;
  return std::string(host) + ":" + std::to_string(::getpid());
}

// Runs store calls for a shared round, riding out a database restart: a call that
// finds the server away (store::StoreUnavailable) is retried with back-off until the
// server answers, for at most `limit_s` seconds in a row; then the error goes up (exit
// 1; an orchestrator restarts the worker). Other store errors go up at once.
class StoreRetry {
 public:
  explicit StoreRetry(double limit_s) : limit_s_(limit_s) {}
  template <class F>
  auto operator()(F&& f) -> decltype(f()) {
    for (;;) {
      try {
        auto r = f();
        since_.reset();
        return r;
      } catch (const store::StoreUnavailable& e) {
        wait(e);
      }
    }
  }
  // After a failure outside operator(): waits (or throws) the same way.
  void wait(const store::StoreUnavailable& e) {
    const auto now = std::chrono::steady_clock::now();
    if (!since_) {
      since_ = now;
      wait_ms_ = 100;
      std::fprintf(stderr, "mmfuse inspect: store unavailable, retrying for up to %.0f s: %s\n",
                   limit_s_, e.what());
    }
    if (g_stop || std::chrono::duration<double>(now - *since_).count() >= limit_s_) throw;
    std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms_));
    wait_ms_ = std::min(wait_ms_ * 2, 2000);
  }

 private:
  double limit_s_;
  std::optional<std::chrono::steady_clock::time_point> since_;
  int wait_ms_ = 100;
};

// A round shared with other workers on one store: join the running round (or start
// it), claim a few devices at a time (one per core) until none is left, inspecting
// only the points of claimed devices not yet recorded in the round. Devices held by
// a worker that died come back when its lease runs out, so this waits for them. When
// the database goes away mid-batch, what was committed stays, the batch's other
// devices are given back once it answers again, and the loop goes on (StoreRetry).
RoundSummary run_shared_round(store::Store& db, PlantRunner& runner, int64_t lease_ms,
                              size_t max_devices, alarm::OutboxDispatcher* dispatcher,
                              StoreRetry& retry, bool* resumed, bool* finished) {
  const PlantConfig& plant = runner.plant();
  const std::string worker = worker_name();
  std::vector<std::string> ids;
  for (const DeviceConfig& d : plant.devices) ids.push_back(d.id);
  const std::string new_id = new_round_id();
  store::RoundInfo round = retry([&] {
    return db.join_round(static_cast<int64_t>(plant.point_count()), ids, new_id, resumed);
  });
  RoundSummary total;
  total.round_id = round.id;
  const size_t batch = static_cast<size_t>(std::max(1, command_pool()->size()));
  size_t claimed_count = 0;
  const auto t0 = std::chrono::steady_clock::now();
  while (!g_stop) {
    size_t limit = batch;
    if (max_devices > 0) {
      if (claimed_count >= max_devices) break;
      limit = std::min(limit, max_devices - claimed_count);
    }
    // This worker holds nothing undone between batches; a claim cut off by a restart
    // may have committed all the same, so a retried claim first gives that back.
    bool again = false;
    const std::vector<std::string> claimed = retry([&] {
      if (again) db.release_claims(round.id, worker);
      again = true;
      return db.claim_devices(round.id, worker, static_cast<int>(limit), lease_ms);
    });
    if (claimed.empty()) {
      if (retry([&] { return db.open_devices(round.id); }) == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));  // others hold the rest
      continue;
    }
    const std::set<std::string> mine(claimed.begin(), claimed.end());
    // Recorded before: by a worker that died, or by this one before the database went away.
    auto skip = retry([&] { return db.round_progress(round.id).done; });
    for (const DeviceConfig& d : plant.devices)
      if (!mine.count(d.id))
        for (const PointConfig& p : d.points) skip.emplace_back(d.id, p.id);
    std::vector<DeviceOutcome> recorded;  // committed, device marked done
    try {
      runner.run_round(round.id, skip, [&](const DeviceOutcome& o) {
        bool alarm = false;
        for (const InspectionRecord& r : o.records)
          alarm = db.record_inspection(r, readings_of(r)).alarm_id != 0 || alarm;
        db.complete_device(round.id, o.device_id, worker, lease_ms);
        recorded.push_back(o);
        if (alarm && dispatcher) dispatcher->notify();
      });
      // Claimed devices with nothing left to inspect (all recorded before) are done too.
      for (const std::string& id : claimed)
        retry([&] {
          db.complete_device(round.id, id, worker, lease_ms);
          return 0;
        });
      claimed_count += claimed.size();
    } catch (const store::StoreUnavailable& e) {
      // Give the batch's unfinished devices back as soon as the server answers; the
      // next claim (this worker's or another's) re-reads what was committed.
      retry.wait(e);
      retry([&] { return db.release_claims(round.id, worker); });
      claimed_count += recorded.size();
    }
    for (DeviceOutcome& o : recorded) {
      total.points += o.records.size();
      for (const InspectionRecord& r : o.records) {
        total.alarms += r.alarm ? 1 : 0;
        for (const ModalityResult& m : r.modalities)
          total.modality_errors += m.status == ModalityStatus::error;
      }
      total.outcomes.push_back(std::move(o));
    }
  }
  *finished = retry([&] { return db.finish_round_when_done(round.id); });
  total.devices = total.outcomes.size();
  total.skipped = plant.devices.size() - total.devices;  // done by others (or before)
  total.wall_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::vector<double> lat;
  for (const DeviceOutcome& o : total.outcomes) lat.push_back(o.latency_ms);
  total.p50_ms = percentile(lat, 0.50);
  total.p95_ms = percentile(lat, 0.95);
  total.max_ms = lat.empty() ? 0.0 : *std::max_element(lat.begin(), lat.end());
  return total;
}

}  // namespace

void register_inspect(CLI::App& app) {
  struct Options {
    std::string plant, store, forward_to, edge_id;
    double forward_interval = 10.0;
    bool once = false, json = false, records = false, no_deliver = false;
    double interval = 0.0;
    int rounds = 0, threads = 0;
    double lease_s = 60.0;
    double reconnect_s = 120.0;
    size_t max_devices = 0;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd =
      app.add_subcommand("inspect", "Run inspection rounds over the devices of a plant file");
  cmd->add_option("--plant", opt->plant, "Plant description (YAML, see docs/inspection.md)")
      ->required();
  auto* once = cmd->add_flag("--once", opt->once, "Run one round and exit (the default)");
  cmd->add_option("--interval", opt->interval, "Run a round every S seconds until interrupted")
      ->check(CLI::Range(0.0, 7.0 * 86400.0))
      ->excludes(once);
  cmd->add_option("--rounds", opt->rounds, "With --interval: stop after N rounds (0 = no limit)")
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--max-devices", opt->max_devices,
                  "Inspect at most N devices, leaving the round open (the next run resumes it)")
      ->check(CLI::Range(0, 100000000));
  cmd->add_flag(
      "--no-deliver", opt->no_deliver,
      "Queue alarms in the outbox without delivering them (`mmfuse alarms deliver` does)");
  cmd->add_flag("--json", opt->json, "Print one JSON object per round");
  cmd->add_flag("--records", opt->records, "With --json: include every inspection record");
  add_threads_option(cmd, &opt->threads);
  add_store_option(cmd, &opt->store);
  cmd->add_option("--forward-to", opt->forward_to,
                  "Edge sync: forward this store's inspections, alarms and rounds to a central "
                  "store (postgresql://...) in the background, resuming after outages");
  cmd->add_option("--edge-id", opt->edge_id,
                  "With --forward-to: this edge's name at the centre (default: kept, else host)");
  cmd->add_option("--forward-interval", opt->forward_interval,
                  "With --forward-to: seconds between forwarding passes (default 10)")
      ->check(CLI::Range(0.1, 86400.0));
  cmd->add_option("--lease", opt->lease_s,
                  "PostgreSQL store: seconds a worker's claim on a device lasts before another "
                  "worker takes it over (default 60)")
      ->check(CLI::Range(1.0, 86400.0));
  cmd->add_option("--reconnect-for", opt->reconnect_s,
                  "PostgreSQL store: seconds to keep retrying when the database stops "
                  "answering mid-round before exiting 1 (default 120)")
      ->check(CLI::Range(0.0, 86400.0));
  cmd->callback([opt] {
    apply_threads(opt->threads);
    PlantConfig plant = load_plant(opt->plant);
    store::StoreOptions so;
    so.dedupe_cooldown_ms = static_cast<int64_t>(plant.alarms.cooldown_s * 1000.0);
    so.retention_days = plant.retention_days;
    if (plant.alarms.mqtt) so.sinks.push_back("mqtt");
    if (plant.alarms.webhook) so.sinks.push_back("webhook");
    so.alarm_payload = alarm::alarm_payload;
    // Evidence files stay under the plant's data_dir whichever database holds the rows.
    const std::string url = store_url_or_env(opt->store, false);
    store::StoreLocation where = url.empty() ? store::sqlite_location(plant.data_dir)
                                             : with_flag("--store", [&] {
                                                 return store::parse_store_url(url);
                                               });
    where.data_dir = plant.data_dir;
    auto db = store::Store::open(where, so);
    db->upsert_devices(device_infos(plant));

    std::unique_ptr<alarm::OutboxDispatcher> dispatcher;
    if (!opt->no_deliver && !so.sinks.empty()) {
      std::vector<std::shared_ptr<alarm::Sink>> sinks;
      if (plant.alarms.mqtt) {
        alarm::MqttOptions mo;
        mo.host = plant.alarms.mqtt->host;
        mo.port = plant.alarms.mqtt->port;
        mo.topic_prefix = plant.alarms.mqtt->topic_prefix;
        sinks.push_back(std::make_shared<alarm::MqttSink>(mo));
      }
      if (plant.alarms.webhook) {
        alarm::WebhookOptions wo;
        wo.url = plant.alarms.webhook->url;
        wo.timeout_ms = static_cast<int>(plant.alarms.webhook->timeout_s * 1000.0);
        sinks.push_back(std::make_shared<alarm::WebhookSink>(wo));
      }
      dispatcher = std::make_unique<alarm::OutboxDispatcher>(*db, sinks);
      dispatcher->start();
    }

    // Edge sync: an unreachable centre is retried in the background (the edge keeps
    // inspecting); one that answers but refuses (schema too new, edge id taken) stops here.
    std::unique_ptr<store::EdgeForwarder> forwarder;
    if (!opt->forward_to.empty()) {
      store::ForwardOptions fo;
      fo.edge_id = opt->edge_id;
      forwarder = with_flag("--forward-to", [&] {
        return std::make_unique<store::EdgeForwarder>(
            *db, opt->forward_to, fo, static_cast<int64_t>(opt->forward_interval * 1000.0),
            [](const std::string& line) {
              std::fprintf(stderr, "mmfuse inspect: %s\n", line.c_str());
            });
      });
      forwarder->pass(true);
      forwarder->start();
    }

    // PostgreSQL: the store is shared by any number of workers, which split each round;
    // each worker fits only the devices it claims (lazily), so it starts at once and
    // N workers fit the plant once between them, not N times.
    const bool shared = std::string(db->backend_kind()) == "postgresql";
    PlantRunner runner(
        std::move(plant), *command_pool(),
        [](const std::string& line) { std::fprintf(stderr, "mmfuse inspect: %s\n", line.c_str()); },
        shared ? Fitting::lazy : Fitting::eager);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    const bool repeat = opt->interval > 0.0;
    StoreRetry retry(opt->reconnect_s);
    for (int n = 0; !g_stop; ++n) {
      const auto start = std::chrono::steady_clock::now();
      RoundSummary s;
      bool resumed = false, finished = false;
      if (shared) {
        retry([&] {
          db->prune();
          return 0;
        });
        s = run_shared_round(*db, runner, static_cast<int64_t>(opt->lease_s * 1000.0),
                             opt->max_devices, dispatcher.get(), retry, &resumed, &finished);
      } else {
        db->prune();
        // Resume the round a previous run left open, else start a new one.
        store::RoundInfo round;
        if (auto open = db->resume_round()) {
          round = db->round_progress(open->id);
          resumed = true;
        } else {
          round =
              db->begin_round(static_cast<int64_t>(runner.plant().point_count()), new_round_id());
        }
        s = runner.run_round(
            round.id, round.done,
            [&](const DeviceOutcome& o) {
              bool alarm = false;
              for (const InspectionRecord& r : o.records) {
                const store::RecordOutcome out = db->record_inspection(r, readings_of(r));
                alarm = alarm || out.alarm_id != 0;
              }
              if (alarm && dispatcher) dispatcher->notify();
            },
            opt->max_devices);
        const store::RoundInfo progress = db->round_progress(round.id);
        finished = progress.position >= progress.total;
        if (finished) db->finish_round(round.id);
      }
      if (forwarder) forwarder->notify();
      if (opt->json)
        print_json(summary_json(s, resumed, finished, opt->records));
      else
        print_plain(s, resumed, finished);
      if (!repeat || (opt->rounds > 0 && n + 1 >= opt->rounds) || !finished) break;
      const auto next = start + std::chrono::duration<double>(opt->interval);
      while (!g_stop && std::chrono::steady_clock::now() < next)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (dispatcher) dispatcher->stop(true);
    if (forwarder) forwarder->stop(true);  // one last pass: what this run recorded
  });
}

}  // namespace mmfuse::cli
