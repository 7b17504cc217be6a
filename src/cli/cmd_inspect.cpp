// `mmfuse inspect --plant plant.yaml [--once | --interval S]`: inspection
// rounds over every device of the plant, devices spread over --threads cores;
// prints a summary per round (devices, alarms, per-device latency p50/p95).
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <memory>
#include <thread>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/thread_pool.h"
#include "inspect/plant.h"
#include "inspect/round_runner.h"
#include "mmfuse/error.h"

namespace mmfuse::cli {

using namespace mmfuse::inspect;

namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

double round3(double v) { return std::round(v * 1000.0) / 1000.0; }

Json summary_json(const RoundSummary& s, bool with_records) {
  Json j;
  j["round_id"] = s.round_id;
  j["devices"] = s.devices;
  j["points"] = s.points;
  j["skipped"] = s.skipped;
  j["alarms"] = s.alarms;
  j["modality_errors"] = s.modality_errors;
  j["latency_ms"] = {{"p50", round3(s.p50_ms)}, {"p95", round3(s.p95_ms)}, {"max", round3(s.max_ms)}};
  j["round_ms"] = round3(s.wall_ms);
  Json alarms = Json::array();
  for (const DeviceOutcome& o : s.outcomes)
    for (const InspectionRecord& r : o.records)
      if (r.alarm)
        alarms.push_back({{"device", r.device_id}, {"point", r.point_id}, {"type", r.alarm_type},
                          {"fused_score", round3(r.fused_score)}});
  j["alarm_list"] = alarms;
  if (with_records) {
    Json recs = Json::array();
    for (const DeviceOutcome& o : s.outcomes)
      for (const InspectionRecord& r : o.records) recs.push_back(Json::parse(record_to_json(r).dump()));
    j["records"] = recs;
  }
  return j;
}

void print_plain(const RoundSummary& s) {
  std::printf("round %s: %zu devices (%zu points) inspected, %zu skipped, %zu alarms, %zu modality errors\n",
              s.round_id.c_str(), s.devices, s.points, s.skipped, s.alarms, s.modality_errors);
  std::printf("  latency per device: p50 %.1f ms, p95 %.1f ms, max %.1f ms; round %.0f ms\n", s.p50_ms, s.p95_ms,
              s.max_ms, s.wall_ms);
  for (const DeviceOutcome& o : s.outcomes)
    for (const InspectionRecord& r : o.records)
      if (r.alarm)
        std::printf("  ALARM %s/%s: %s (fused %.2f)\n", r.device_id.c_str(), r.point_id.c_str(),
                    r.alarm_type.c_str(), r.fused_score);
  std::fflush(stdout);
}

}  // namespace

void register_inspect(CLI::App& app) {
  struct Options {
    std::string plant;
    bool once = false, json = false, records = false;
    double interval = 0.0;
    int rounds = 0;
    int threads = 0;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("inspect", "Run inspection rounds over the devices of a plant file");
  cmd->add_option("--plant", opt->plant, "Plant description (YAML, see docs/inspection.md)")->required();
  auto* once = cmd->add_flag("--once", opt->once, "Run one round and exit (the default)");
  cmd->add_option("--interval", opt->interval, "Run a round every S seconds until interrupted")
      ->check(CLI::Range(0.0, 7.0 * 86400.0))
      ->excludes(once);
  cmd->add_option("--rounds", opt->rounds, "With --interval: stop after N rounds (0 = no limit)")
      ->check(CLI::Range(0, 1000000));
  cmd->add_flag("--json", opt->json, "Print one JSON object per round");
  cmd->add_flag("--records", opt->records, "With --json: include every inspection record");
  add_threads_option(cmd, &opt->threads);
  cmd->callback([opt] {
    apply_threads(opt->threads);
    PlantConfig plant = load_plant(opt->plant);
    PlantRunner runner(std::move(plant), default_pool(),
                       [](const std::string& line) { std::fprintf(stderr, "mmfuse inspect: %s\n", line.c_str()); });
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    const bool repeat = opt->interval > 0.0;
    for (int n = 0; !g_stop; ++n) {
      const auto start = std::chrono::steady_clock::now();
      const RoundSummary s = runner.run_round(new_round_id());
      if (opt->json) print_json(summary_json(s, opt->records));
      else print_plain(s);
      if (!repeat || (opt->rounds > 0 && n + 1 >= opt->rounds)) break;
      const auto next = start + std::chrono::duration<double>(opt->interval);
      while (!g_stop && std::chrono::steady_clock::now() < next)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
}

}  // namespace mmfuse::cli
