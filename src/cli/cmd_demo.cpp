// `mmfuse demo`: generates a synthetic plant with ground truth (scratches, oil
// leaks, missing parts, hot bearings, overheating, knocks, squeals, stuck
// sensors), runs one inspection round on it through the plant file, and
// reports precision/recall per modality and fused, and per-device latency.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/thread_pool.h"
#include "inspect/plant.h"
#include "inspect/round_runner.h"
#include "mmfuse/error.h"
#include "tools/demo.h"

namespace mmfuse::cli {

namespace fs = std::filesystem;
using namespace mmfuse::inspect;

namespace {

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

double round3(double v) {
  return std::round(v * 1000.0) / 1000.0;
}

}  // namespace

void register_demo(CLI::App& app) {
  struct Options {
    DemoOptions demo;
    std::string data;
    bool json = false, keep = false, no_inspect = false;
    int threads = 0;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "demo", "Generate a synthetic plant with known faults, inspect it, score against the truth");
  cmd->add_option("--devices", opt->demo.devices, "Devices in the plant")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--seed", opt->demo.seed, "Random seed (same seed, same plant)");
  cmd->add_option("--data", opt->data,
                  "Folder to write the plant into (must be empty or absent; kept). Default: a "
                  "temporary folder, removed afterwards");
  cmd->add_flag("--keep", opt->keep, "Keep the temporary folder (its path is printed)");
  cmd->add_flag("--json", opt->json, "Print one JSON object");
  cmd->add_flag("--no-inspect", opt->no_inspect,
                "Only write the plant (with --data): no round, no scores. For a plant that "
                "other commands inspect (e.g. several `inspect` workers)");
  cmd->add_option("--image-width", opt->demo.image_width, "Camera frame width")
      ->check(CLI::Range(64, 8192));
  cmd->add_option("--image-height", opt->demo.image_height, "Camera frame height")
      ->check(CLI::Range(64, 8192));
  cmd->add_option("--ir-width", opt->demo.ir_width, "Infrared frame width")
      ->check(CLI::Range(64, 4096));
  cmd->add_option("--ir-height", opt->demo.ir_height, "Infrared frame height")
      ->check(CLI::Range(64, 4096));
  cmd->add_option("--audio-seconds", opt->demo.audio_seconds, "Length of each sound clip")
      ->check(CLI::Range(0.5, 60.0));
  cmd->add_option("--sensor-seconds", opt->demo.sensor_seconds,
                  "Sensor window per inspection (10 Hz)")
      ->check(CLI::Range(10.0, 3600.0));
  cmd->add_option("--baseline-clips", opt->demo.baseline_clips,
                  "Normal recordings per device the sound detector is fitted on")
      ->check(CLI::Range(2, 100));
  cmd->add_option("--baseline-clip-seconds", opt->demo.baseline_clip_seconds,
                  "Length of each normal recording")
      ->check(CLI::Range(0.5, 60.0));
  cmd->add_option("--sensor-baseline-seconds", opt->demo.baseline_seconds,
                  "Sensor baseline per device the sensor model is fitted on (10 Hz)")
      ->check(CLI::Range(30.0, 86400.0));
  add_threads_option(cmd, &opt->threads);
  cmd->callback([opt] {
    apply_threads(opt->threads);
    ThreadPool& pool = *command_pool();
    DemoOptions d = opt->demo;
    const bool temporary = opt->data.empty();
    d.dir = temporary ? fs::temp_directory_path() / ("mmfuse_demo_" + std::to_string(::getpid()) +
                                                     "_" + std::to_string(d.seed))
                      : fs::path(opt->data);
    struct Cleanup {
      fs::path dir;
      bool active;
      ~Cleanup() {
        std::error_code ec;
        if (active) fs::remove_all(dir, ec);
      }
    } cleanup{d.dir, temporary && !opt->keep};

    if (opt->no_inspect && temporary)
      throw_error(ErrorKind::bad_input, "demo: --no-inspect needs --data (the plant is kept)");
    const auto t0 = std::chrono::steady_clock::now();
    const DemoPlant plant = generate_demo_plant(d, pool);
    const double generate_ms = ms_since(t0);
    if (opt->no_inspect) {
      if (opt->json) {
        print_json(Json{{"devices", d.devices},
                        {"seed", d.seed},
                        {"generate_ms", round3(generate_ms)},
                        {"threads", pool.size()},
                        {"data_dir", d.dir.string()}});
      } else {
        std::printf("mmfuse demo: %d devices (seed %llu) written in %.0f ms\n  plant: %s\n",
                    d.devices, static_cast<unsigned long long>(d.seed), generate_ms,
                    plant.plant_file.string().c_str());
      }
      return;
    }
    const auto t1 = std::chrono::steady_clock::now();
    PlantRunner runner(load_plant(plant.plant_file), pool);
    const double setup_ms = ms_since(t1);
    const RoundSummary round = runner.run_round(new_round_id());
    const DemoScore score = score_demo(plant.truth, round);

    std::map<std::string, int> scenarios;
    for (const DemoTruth& t : plant.truth) ++scenarios[scenario_name(t.scenario)];
    if (opt->json) {
      Json j;
      j["devices"] = d.devices;
      j["seed"] = d.seed;
      j["precision"] = round3(score.fused.precision());
      j["recall"] = round3(score.fused.recall());
      Json per = Json::object();
      for (Modality m : kAllModalities) {
        const Counts& c = score.modality[static_cast<size_t>(m)];
        per[modality_name(m)] = {{"precision", round3(c.precision())},
                                 {"recall", round3(c.recall())},
                                 {"tp", c.tp},
                                 {"fp", c.fp},
                                 {"fn", c.fn},
                                 {"tn", c.tn}};
      }
      j["per_modality"] = per;
      j["fused"] = {{"tp", score.fused.tp},
                    {"fp", score.fused.fp},
                    {"fn", score.fused.fn},
                    {"tn", score.fused.tn}};
      j["latency_ms"] = {{"p50", round3(round.p50_ms)},
                         {"p95", round3(round.p95_ms)},
                         {"max", round3(round.max_ms)}};
      j["alarms"] = round.alarms;
      j["round_ms"] = round3(round.wall_ms);
      j["setup_ms"] = round3(setup_ms);
      j["generate_ms"] = round3(generate_ms);
      j["threads"] = pool.size();
      j["scenarios"] = scenarios;
      j["mistakes"] = score.mistakes;
      if (!cleanup.active) j["data_dir"] = d.dir.string();
      print_json(j);
      return;
    }
    std::printf("mmfuse demo: %d devices (seed %llu), %d threads\n", d.devices,
                static_cast<unsigned long long>(d.seed), pool.size());
    std::printf("  scenarios:");
    for (const auto& [name, count] : scenarios) std::printf(" %s=%d", name.c_str(), count);
    std::printf("\n  %-9s %9s %7s  %4s %4s %4s %4s\n", "", "precision", "recall", "tp", "fp", "fn",
                "tn");
    for (Modality m : kAllModalities) {
      const Counts& c = score.modality[static_cast<size_t>(m)];
      std::printf("  %-9s %9.3f %7.3f  %4zu %4zu %4zu %4zu\n", modality_name(m), c.precision(),
                  c.recall(), c.tp, c.fp, c.fn, c.tn);
    }
    const Counts& f = score.fused;
    std::printf("  %-9s %9.3f %7.3f  %4zu %4zu %4zu %4zu\n", "fused", f.precision(), f.recall(),
                f.tp, f.fp, f.fn, f.tn);
    std::printf(
        "  alarms %zu; latency per device p50 %.1f ms, p95 %.1f ms; round %.0f ms; "
        "generate %.0f ms, fit %.0f ms\n",
        round.alarms, round.p50_ms, round.p95_ms, round.wall_ms, generate_ms, setup_ms);
    for (const std::string& m : score.mistakes) std::printf("  - %s\n", m.c_str());
    if (!cleanup.active) std::printf("  plant: %s\n", plant.plant_file.string().c_str());
  });
}

}  // namespace mmfuse::cli
