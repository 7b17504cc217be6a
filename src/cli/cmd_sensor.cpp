// `mmfuse sensor`: anomaly detection on sensor streams (chapter section 6).
//   detect  score a CSV file row by row after fitting on its first rows
//   eval    the SKAB outlier-detection protocol, table next to the leaderboard
//   bench   streaming rows/s
//   poll    live Modbus TCP polling to CSV, optionally scored as it arrives
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <thread>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/utc_time.h"
#include "detect/pipeline.h"
#include "io/atomic_file.h"
#include "mmfuse/error.h"
#include "sensor/csv_source.h"
#include "sensor/modbus_source.h"
#include "sensor/time_axis.h"
#include "tools/nab_eval.h"
#include "tools/sensor_bench.h"
#include "tools/skab_eval.h"
#include "tools/synthetic.h"

namespace mmfuse::cli {
namespace {

using sensor::PipelineOptions;

// Options shared by detect / eval / bench / poll.
struct PipelineFlags {
  PipelineOptions pipeline;
  std::string ignore;  // comma-separated channel names
  bool no_despike = false;
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = s.find(',', start);
    std::string item =
        s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

void add_pipeline_options(CLI::App* cmd, PipelineFlags* f, bool with_method = true) {
  if (with_method)
    cmd->add_option("--method", f->pipeline.method,
                    "Detector: auto (default: online for one channel, ensemble for several), "
                    "iforest, t2, pca, mset, ensemble, or online (adapts as it streams; "
                    "docs/sensors.md)");
  cmd->add_option("--smooth", f->pipeline.smooth,
                  "Trailing-mean window over scores, in rows (default 30; 1 = off)")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--margin", f->pipeline.margin,
                  "Threshold = margin x calibrated maximum (default 1.1)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--folds", f->pipeline.folds, "Out-of-fold calibration blocks (default 4)")
      ->check(CLI::Range(2, 50));
  cmd->add_option("--seed", f->pipeline.detector.seed, "Random seed (Isolation Forest)");
  cmd->add_option("--trees", f->pipeline.detector.trees, "Isolation Forest trees (default 100)")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--sample-size", f->pipeline.detector.sample_size,
                  "Isolation Forest sub-sample size psi (default 256)")
      ->check(CLI::Range(2, 1 << 24));
  cmd->add_option("--ignore-channels", f->ignore,
                  "Comma-separated channels to leave out of the detector");
  cmd->add_flag("--no-despike", f->no_despike, "Turn off 3-sigma despiking (on by default)");
  cmd->add_option("--despike-window", f->pipeline.cleaning.despike_window,
                  "Despike: trailing window of raw values, rows (default 30)")
      ->check(CLI::Range(2, 100000));
  cmd->add_option("--despike-sigmas", f->pipeline.cleaning.despike_sigmas,
                  "Despike: outlier when beyond this many sigmas (default 3)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--moving-average", f->pipeline.cleaning.moving_average,
                  "Trailing moving average of inputs, rows (default 1 = off)")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--slow-channels", f->pipeline.slow_channel_autocorr,
                  "Leave out channels whose training autocorrelation at --slow-lag is at least "
                  "this (default 0.7; 0 = off; see docs/sensors.md)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--slow-lag", f->pipeline.slow_channel_lag_s,
                  "Lag of the slow-channel rule in seconds of the time column (rows when the "
                  "input has none; default 1)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--online-threshold", f->pipeline.online.threshold,
                  "online method: flag when the anomaly likelihood score is at least this "
                  "(default 0.35, i.e. a 10^-3.5 tail probability)")
      ->check(CLI::Range(0.0, 1.0));
}

PipelineOptions finish_pipeline(const PipelineFlags& f) {
  PipelineOptions p = f.pipeline;
  p.cleaning.despike = !f.no_despike;
  p.ignore_channels = split_list(f.ignore);
  sensor::check_pipeline_method(p.method);  // unknown names fail before any work
  return p;
}

Json pipeline_json(const PipelineOptions& p) {
  Json j;
  j["method"] = p.method;
  j["smooth"] = p.smooth;
  j["folds"] = p.folds;
  j["margin"] = p.margin;
  j["seed"] = p.detector.seed;
  j["ignore_channels"] = p.ignore_channels;
  j["despike"] = p.cleaning.despike;
  if (p.cleaning.despike) {
    j["despike_window"] = p.cleaning.despike_window;
    j["despike_sigmas"] = p.cleaning.despike_sigmas;
  }
  j["moving_average"] = p.cleaning.moving_average;
  j["slow_channel_autocorr"] = p.slow_channel_autocorr;
  j["slow_channel_lag_s"] = p.slow_channel_lag_s;
  if (sensor::is_online_method(p.method) || p.method == "auto")
    j["online_threshold"] = p.online.threshold;
  return j;
}

struct CsvFlags {
  std::string delimiter;
  std::string time_column;
  bool reject = false;
};

void add_csv_options(CLI::App* cmd, CsvFlags* f) {
  cmd->add_option("--delimiter", f->delimiter,
                  "Field delimiter: ',', ';' or 'tab' (default: detect)");
  cmd->add_option(
      "--time-column", f->time_column,
      "Time column name (default: datetime/timestamp/time/date if present; '-' = none)");
  cmd->add_flag("--reject-bad-rows", f->reject,
                "Fail (exit 2) on the first bad row instead of skipping it");
}

sensor::CsvOptions csv_options(const CsvFlags& f) {
  sensor::CsvOptions o;
  if (f.delimiter == "tab" || f.delimiter == "\\t")
    o.delimiter = '\t';
  else if (f.delimiter.size() == 1)
    o.delimiter = f.delimiter[0];
  else
    MMFUSE_CHECK(f.delimiter.empty(), bad_input, "--delimiter must be one character or 'tab'");
  o.time_column = f.time_column;
  o.reject_bad_rows = f.reject;
  return o;
}

// Reports skipped rows on stderr (first 20) and as JSON (first 100).
Json report_bad_rows(const sensor::SensorTable& t) {
  Json arr = Json::array();
  for (size_t i = 0; i < t.bad_rows.size(); ++i) {
    const auto& b = t.bad_rows[i];
    if (i < 20)
      std::fprintf(stderr, "mmfuse: warning: %s:%zu: %s (row skipped)\n", t.source.c_str(), b.line,
                   b.reason.c_str());
    if (i < 100) arr.push_back({{"line", b.line}, {"row", b.row}, {"reason", b.reason}});
  }
  if (t.bad_rows.size() > 20)
    std::fprintf(stderr, "mmfuse: warning: %s: %zu more bad rows skipped\n", t.source.c_str(),
                 t.bad_rows.size() - 20);
  return arr;
}

std::string format_score(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// ---------------------------------------------------------------- detect
void register_detect(CLI::App* sensor) {
  struct Options {
    std::string input, out;
    size_t train_rows = 400;
    PipelineFlags flags;
    CsvFlags csv;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = sensor->add_subcommand(
      "detect", "Fit on the first rows of a CSV file and score every row (row,score,anomaly)");
  cmd->add_option("--input", opt->input, "Sensor CSV file")->required();
  cmd->add_option("--out", opt->out, "Output CSV: row,score,anomaly")->required();
  cmd->add_option("--train-rows", opt->train_rows,
                  "Rows (from the start) assumed normal and used for fitting (default 400)")
      ->check(CLI::PositiveNumber);
  add_pipeline_options(cmd, &opt->flags);
  add_csv_options(cmd, &opt->csv);
  cmd->callback([opt] {
    PipelineOptions pipeline = finish_pipeline(opt->flags);
    const sensor::SensorTable table = sensor::read_csv(opt->input, csv_options(opt->csv));
    const Json bad = report_bad_rows(table);
    MMFUSE_CHECK(table.rows() > 0, bad_input, opt->input + ": no valid data rows");
    MMFUSE_CHECK(opt->train_rows <= table.rows(), bad_input,
                 opt->input + ": --train-rows " + std::to_string(opt->train_rows) +
                     " exceeds the " + std::to_string(table.rows()) + " valid rows");
    pipeline.sample_interval_s = sensor::sampling_interval_seconds(table.times, opt->train_rows);
    const sensor::SensorModel model(table.channels, table.values.slice_rows(0, opt->train_rows),
                                    pipeline);
    sensor::StreamScorer stream = model.stream();
    std::string text = "row,score,anomaly\n";
    size_t anomalies = 0;
    for (size_t r = 0; r < table.rows(); ++r) {
      const sensor::RowResult res = stream.push(table.values.row(r));
      anomalies += res.anomaly ? 1 : 0;
      text += std::to_string(table.row_numbers[r]) + "," + format_score(res.score) + "," +
              (res.anomaly ? "1" : "0") + "\n";
    }
    write_file_atomic(opt->out, text);
    Json j;
    j["input"] = opt->input;
    j["out"] = opt->out;
    j["rows"] = table.rows();
    j["train_rows"] = opt->train_rows;
    j["channels"] = model.used_channels();
    j["constant_channels"] = model.constant_channels();
    j["slow_channels"] = model.slow_channels();
    j["constant_only"] = model.constant_only();
    j["method"] = model.options().method;  // "auto" resolved
    j["sample_interval_s"] = pipeline.sample_interval_s;
    j["slow_channel_lag_rows"] = model.slow_channel_lag_rows();
    j["threshold"] = model.threshold();
    j["anomalies"] = anomalies;
    j["bad_rows_skipped"] = table.bad_rows.size();
    j["bad_rows"] = bad;
    j["pipeline"] = pipeline_json(pipeline);
    print_json(j);
  });
}

// ---------------------------------------------------------------- eval
void print_table(const std::vector<sensor::SkabResult>& results, size_t files,
                 const std::string& dir, const PipelineOptions& p, size_t train_rows) {
  std::printf("SKAB outlier detection: %zu files under %s, fit on the first %zu rows of each\n",
              files, dir.c_str(), train_rows);
  std::string ignored;
  for (const auto& c : p.ignore_channels) ignored += (ignored.empty() ? "" : ",") + c;
  std::string despike = "off";
  if (p.cleaning.despike)
    despike = format_score(p.cleaning.despike_sigmas) + " sigma over " +
              std::to_string(p.cleaning.despike_window) + " rows";
  std::printf(
      "pipeline: despike %s, moving average %zu, score smoothing %zu rows, threshold = "
      "%g x max of %d-fold out-of-fold training scores, ignored channels: %s, slow channels "
      "(training autocorrelation at a lag of %g s >= %g) left out: %s\n\n",
      despike.c_str(), p.cleaning.moving_average, p.smooth, p.margin, p.folds,
      ignored.empty() ? "none" : ignored.c_str(), p.slow_channel_lag_s, p.slow_channel_autocorr,
      p.slow_channel_autocorr > 0.0 ? "yes" : "no");
  std::printf("%-10s %6s %8s %8s   %-26s %6s %8s %8s\n", "method", "F1", "FAR,%", "MAR,%",
              "leaderboard (34 files)", "F1", "FAR,%", "MAR,%");
  for (const auto& r : results) {
    const sensor::LeaderboardEntry* lb = nullptr;
    for (const auto& e : sensor::skab_leaderboard())
      if (r.method == e.method) lb = &e;
    if (r.method == "ensemble" || r.method == "auto")
      lb = &sensor::skab_leaderboard()[1];  // the best entry
    std::printf("%-10s %6.2f %8.2f %8.2f", r.method.c_str(), r.metrics.f1, r.metrics.far,
                r.metrics.mar);
    if (lb != nullptr)
      std::printf("   %-26s %6.2f %8.2f %8.2f", lb->algorithm, lb->f1, lb->far, lb->mar);
    std::printf("\n");
  }
  std::fflush(stdout);
}

Json skab_json(const std::vector<sensor::SkabResult>& results, size_t files, const std::string& dir,
               const PipelineOptions& base, size_t train_rows) {
  Json j;
  j["skab"] = dir;
  j["files"] = files;
  j["train_rows"] = train_rows;
  Json pj = pipeline_json(base);
  pj.erase("method");
  j["pipeline"] = pj;
  Json arr = Json::array();
  for (const auto& r : results) {
    Json per = Json::array();
    for (const auto& f : r.files)
      per.push_back({{"file", f.file},
                     {"tp", f.confusion.tp},
                     {"fp", f.confusion.fp},
                     {"fn", f.confusion.fn},
                     {"tn", f.confusion.tn},
                     {"threshold", f.threshold}});
    arr.push_back({{"method", r.method},
                   {"f1", r.metrics.f1},
                   {"far", r.metrics.far},
                   {"mar", r.metrics.mar},
                   {"tp", r.total.tp},
                   {"fp", r.total.fp},
                   {"fn", r.total.fn},
                   {"tn", r.total.tn},
                   {"per_file", per}});
  }
  j["results"] = arr;
  Json lb = Json::array();
  for (const auto& e : sensor::skab_leaderboard())
    lb.push_back({{"algorithm", e.algorithm}, {"f1", e.f1}, {"far", e.far}, {"mar", e.mar}});
  j["leaderboard"] = lb;
  return j;
}

Json nab_result_json(const sensor::NabResult& r, bool per_file) {
  Json j = {{"profile", r.profile},   {"normalized", r.normalized}, {"threshold", r.threshold},
            {"score", r.score},       {"null_score", r.null_score}, {"perfect_score", r.perfect_score},
            {"windows", r.windows},   {"tp", r.tp},                 {"fp", r.fp},
            {"fn", r.fn},             {"tn", r.tn}};
  if (per_file) {
    Json arr = Json::array();
    for (const auto& f : r.files)
      arr.push_back({{"file", f.file},
                     {"score", f.score},
                     {"tp", f.tp},
                     {"fp", f.fp},
                     {"fn", f.fn},
                     {"tn", f.tn}});
    j["per_file"] = arr;
  }
  return j;
}

// `sensor eval --nab DIR`: NAB's scoring of an mmfuse detector run as
// `sensor detect` runs it, of a published detector's per-row results, or of a
// published scoreboard (per-file scores with a Totals row).
void run_nab_eval(const std::string& dir, const std::string& profile_name,
                  const std::string& method, const std::string& results, bool rank, bool json,
                  const PipelineFlags& flags, int threads) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const bool scoreboard = !results.empty() && !fs::is_directory(fs::path(results) / "realKnownCause", ec) &&
                          !fs::is_directory(fs::path(results) / "artificialNoAnomaly", ec);
  const sensor::NabCorpus corpus = sensor::load_nab_corpus(dir);
  std::vector<const sensor::NabProfile*> profiles;
  if (profile_name == "all")
    for (const auto& p : corpus.profiles) profiles.push_back(&p);
  else
    profiles.push_back(&sensor::find_nab_profile(corpus, profile_name));
  Json out;
  out["nab"] = dir;
  out["files"] = corpus.files.size();
  if (scoreboard) {
    // Published per-file scores: normalise their totals as NAB's runner does.
    Json arr = Json::array();
    for (const auto* p : profiles) {
      const auto e = sensor::nab_scoreboard_entry(results, *p);
      out["detector"] = e.detector;
      arr.push_back({{"profile", e.profile},
                     {"normalized", e.normalized},
                     {"score", e.total},
                     {"null_score", e.null_total}});
      if (!json)
        std::printf("%-20s %-20s NAB %7.2f (raw %.3f, null %.1f; published per-file scores)\n",
                    e.detector.c_str(), e.profile.c_str(), e.normalized, e.total, e.null_total);
    }
    out["results"] = arr;
    if (json) print_json(out);
    return;
  }
  sensor::NabDetections det;
  PipelineOptions pipeline;
  if (!results.empty()) {
    det = sensor::nab_read_results(corpus, results);
  } else {
    PipelineFlags f = flags;
    f.pipeline.method = method;
    pipeline = finish_pipeline(f);
    det = sensor::nab_run_pipeline(corpus, pipeline, threads);
    out["pipeline"] = pipeline_json(pipeline);
  }
  out["detector"] = det.detector;
  out["rank_normalized"] = rank;
  Json arr = Json::array();
  for (const auto* p : profiles) {
    const sensor::NabResult r = sensor::nab_score(corpus, det.scores, *p, std::nullopt, rank);
    Json entry = {{"profile", p->name}, {"scores", nab_result_json(r, true)}};
    if (!json)
      std::printf("%-20s %-20s NAB %7.2f  threshold %.6g  TP %zu FP %zu (scores, one optimised "
                  "threshold%s)\n",
                  det.detector.c_str(), p->name.c_str(), r.normalized, r.threshold, r.tp, r.fp,
                  rank ? ", ranks per file" : "");
    if (!det.flags.empty()) {
      // The detector's own decisions, as they are: flagged rows are detections.
      const sensor::NabResult fr = sensor::nab_score(corpus, det.flags, *p, 0.5, false);
      size_t flagged = 0;
      for (const auto& f : det.flags)
        for (double v : f) flagged += v > 0.5 ? 1 : 0;
      entry["flags"] = nab_result_json(fr, false);
      entry["flags"]["rows_flagged"] = flagged;
      if (!json)
        std::printf("%-20s %-20s NAB %7.2f  (its own anomaly flags: %zu rows flagged, TP %zu FP "
                    "%zu)\n",
                    det.detector.c_str(), p->name.c_str(), fr.normalized, flagged, fr.tp, fr.fp);
    }
    arr.push_back(entry);
  }
  out["results"] = arr;
  if (json) print_json(out);
}

void register_eval(CLI::App* sensor) {
  struct Options {
    std::string skab, nab, results, profile = "standard";
    std::string method = "auto";
    size_t train_rows = 400;
    bool json = false, rank = false;
    int threads = 0;
    bool all_channels = false;
    PipelineFlags flags;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = sensor->add_subcommand(
      "eval", "Score detectors on SKAB (outlier protocol) or NAB (NAB's scoring)");
  auto* skab = cmd->add_option("--skab", opt->skab, "SKAB data folder (holding valve1/, other/, ...)");
  auto* nab = cmd->add_option("--nab", opt->nab,
                              "NAB folder (data/, labels/combined_windows*.json, profiles.json)");
  skab->excludes(nab);
  cmd->add_option("--method,--detector", opt->method,
                  "Detector name(s), comma-separated, or 'all' (default: what `sensor detect` "
                  "runs: auto = online for one channel, ensemble for several)");
  cmd->add_option("--results", opt->results,
                  "NAB: a published detector's results folder (per-row CSVs, or the "
                  "<name>_<profile>_scores.csv scoreboard files) instead of an mmfuse detector");
  cmd->add_option("--profile", opt->profile,
                  "NAB profile: standard, low_fp, low_fn or all (default standard)");
  cmd->add_flag("--rank", opt->rank,
                "NAB: rank-normalise each file's scores before the corpus threshold is optimised");
  cmd->add_option("--train-rows", opt->train_rows,
                  "SKAB: training rows per file (default 400; NAB uses each file's probation rows)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--json", opt->json, "Print JSON instead of the table");
  add_threads_option(cmd, &opt->threads);
  add_pipeline_options(cmd, &opt->flags, /*with_method=*/false);
  cmd->get_option("--ignore-channels")->description("Channels left out (default: none)");
  cmd->add_flag("--all-channels", opt->all_channels,
                "Use every channel (no --ignore-channels, no slow-channel rule)");
  cmd->callback([opt] {
    MMFUSE_CHECK(!opt->skab.empty() || !opt->nab.empty(), bad_input,
                 "give --skab DIR or --nab DIR");
    const int threads =
        opt->threads > 0 ? opt->threads : static_cast<int>(std::thread::hardware_concurrency());
    PipelineFlags flags = opt->flags;
    if (opt->all_channels) {
      flags.ignore.clear();
      flags.pipeline.slow_channel_autocorr = 0.0;
    }
    if (!opt->nab.empty()) {
      run_nab_eval(opt->nab, opt->profile, opt->method, opt->results, opt->rank, opt->json, flags,
                   threads);
      return;
    }
    MMFUSE_CHECK(opt->results.empty(), bad_input, "--results is for --nab");
    std::vector<std::string> methods;
    if (opt->method == "all")
      methods = sensor::pipeline_method_names();
    else
      methods = split_list(opt->method);
    MMFUSE_CHECK(!methods.empty(), bad_input, "--method names no detector");
    flags.pipeline.method = methods.front();
    PipelineOptions base = finish_pipeline(flags);
    for (const auto& m : methods) sensor::check_pipeline_method(m);
    const auto files = sensor::find_skab_files(opt->skab);
    std::vector<sensor::SkabResult> results;
    for (const auto& m : methods) {
      PipelineOptions p = base;
      p.method = m;
      results.push_back(sensor::evaluate_skab(opt->skab, files, p, opt->train_rows, threads));
    }
    if (!opt->json) {
      print_table(results, files.size(), opt->skab, base, opt->train_rows);
      return;
    }
    print_json(skab_json(results, files.size(), opt->skab, base, opt->train_rows));
  });
}

// ---------------------------------------------------------------- bench
void register_bench_cmd(CLI::App* sensor) {
  struct Options {
    std::string input;
    size_t rows = 20000;
    size_t channels = 8;
    size_t train_rows = 400;
    std::string method = "all";
    int threads = 0;
    bool json = false;
    PipelineFlags flags;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = sensor->add_subcommand("bench", "Measure streaming scoring throughput (rows/s)");
  cmd->add_option("--input", opt->input, "Sensor CSV (default: synthetic data)");
  cmd->add_option("--rows", opt->rows, "Synthetic rows (default 20000)")
      ->check(CLI::Range(100, 100000000));
  cmd->add_option("--channels", opt->channels, "Synthetic channels (default 8)")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--train-rows", opt->train_rows, "Training rows (default 400)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--method", opt->method, "Detector name or 'all' (default all)");
  cmd->add_flag("--json", opt->json, "Print JSON (default: a table)");
  add_threads_option(cmd, &opt->threads);
  add_pipeline_options(cmd, &opt->flags, /*with_method=*/false);
  cmd->callback([opt] {
    std::vector<std::string> channels;
    sensor::Matrix data;
    if (!opt->input.empty()) {
      sensor::SensorTable t = sensor::read_csv(opt->input, {});
      report_bad_rows(t);
      channels = t.channels;
      data = std::move(t.values);
    } else {
      sensor::SyntheticOptions s;
      s.rows = opt->rows;
      s.channels = opt->channels;
      data = sensor::synthetic_sensor_data(s);
      for (size_t c = 0; c < opt->channels; ++c) channels.push_back("c" + std::to_string(c));
    }
    const std::vector<std::string> methods =
        opt->method == "all" ? sensor::pipeline_method_names() : split_list(opt->method);
    const int threads =
        opt->threads > 0 ? opt->threads : static_cast<int>(std::thread::hardware_concurrency());
    Json arr = Json::array();
    if (!opt->json)
      std::printf("%-10s %10s %16s %22s\n", "method", "fit ms", "rows/s (1 stream)",
                  ("rows/s (" + std::to_string(threads) + " streams)").c_str());
    for (const auto& m : methods) {
      PipelineFlags flags = opt->flags;
      flags.pipeline.method = m;
      const PipelineOptions p = finish_pipeline(flags);
      const auto r = sensor::bench_streaming(channels, data, opt->train_rows, p, threads);
      if (!opt->json)
        std::printf("%-10s %10.1f %16.0f %22.0f\n", m.c_str(), r.fit_ms, r.rows_per_s_one_stream,
                    r.rows_per_s_all_streams);
      arr.push_back({{"method", m},
                     {"fit_ms", r.fit_ms},
                     {"rows_per_s_one_stream", r.rows_per_s_one_stream},
                     {"rows_per_s_all_streams", r.rows_per_s_all_streams},
                     {"streams", r.streams}});
    }
    if (opt->json)
      print_json({{"rows", data.rows},
                  {"channels", data.cols},
                  {"train_rows", opt->train_rows},
                  {"threads", threads},
                  {"results", arr}});
  });
}

// ---------------------------------------------------------------- poll
// Set by SIGINT/SIGTERM; a watcher thread turns it into poller.stop() (a
// signal handler may only touch lock-free atomics).
std::atomic<bool> g_signalled{false};
extern "C" void on_signal(int) {
  g_signalled = true;
}

std::string iso_time(double t) {
  const auto secs = static_cast<int64_t>(t);
  const int ms = std::clamp(static_cast<int>((t - static_cast<double>(secs)) * 1000.0), 0, 999);
  return iso8601_utc(secs * 1000 + ms);
}

void register_poll(CLI::App* sensor) {
  struct Options {
    sensor::ModbusOptions modbus;
    std::vector<std::string> registers;
    size_t count = 0;
    double duration = 0.0;
    size_t train_rows = 0;
    int timeout_ms = 500, backoff_ms = 100, backoff_max_ms = 5000;
    PipelineFlags flags;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = sensor->add_subcommand(
      "poll", "Poll Modbus TCP registers to CSV on stdout (time,<names>[,score,anomaly])");
  cmd->add_option("--host", opt->modbus.host, "Device address (default 127.0.0.1)");
  cmd->add_option("--port", opt->modbus.port, "TCP port (default 502)")
      ->check(CLI::Range(1, 65535));
  cmd->add_option("--unit", opt->modbus.unit_id, "Unit (slave) id (default 1)")
      ->check(CLI::Range(0, 247));
  cmd->add_option("--register", opt->registers,
                  "NAME:ADDRESS[:holding|input][:u16|i16|u32|i32|f32][:swap][:SCALE[:OFFSET]] "
                  "(repeatable)")
      ->required();
  cmd->add_option("--rate", opt->modbus.rate_hz, "Samples per second (default 10)")
      ->check(CLI::Range(0.001, 1000.0));
  cmd->add_option("--count", opt->count, "Stop after this many rows (default: run until signal)");
  cmd->add_option("--duration", opt->duration, "Stop after this many seconds");
  cmd->add_option("--timeout-ms", opt->timeout_ms, "Response timeout (default 500)")
      ->check(CLI::Range(1, 60000));
  cmd->add_option("--backoff-ms", opt->backoff_ms, "First reconnect delay (default 100)")
      ->check(CLI::Range(1, 600000));
  cmd->add_option("--backoff-max-ms", opt->backoff_max_ms, "Longest reconnect delay (default 5000)")
      ->check(CLI::Range(1, 3600000));
  cmd->add_option("--train-rows", opt->train_rows,
                  "Score live: fit on the first N rows, then add score,anomaly columns");
  add_pipeline_options(cmd, &opt->flags);
  cmd->callback([opt] {
    sensor::ModbusOptions mo = opt->modbus;
    for (const auto& r : opt->registers) mo.registers.push_back(sensor::parse_register_spec(r));
    mo.response_timeout = std::chrono::milliseconds(opt->timeout_ms);
    mo.backoff_initial = std::chrono::milliseconds(opt->backoff_ms);
    mo.backoff_max = std::chrono::milliseconds(std::max(opt->backoff_max_ms, opt->backoff_ms));
    std::vector<std::string> names;
    for (const auto& r : mo.registers) names.push_back(r.name);
    std::optional<PipelineOptions> pipeline;
    if (opt->train_rows > 0) {
      pipeline = finish_pipeline(opt->flags);
      pipeline->sample_interval_s = 1.0 / mo.rate_hz;  // the schedule the poller keeps
    }
    sensor::ModbusPoller poller(mo);
    g_signalled = false;
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::string header = "time";
    for (const auto& n : names) header += "," + n;
    if (pipeline) header += ",score,anomaly";
    std::printf("%s\n", header.c_str());
    std::fflush(stdout);
    sensor::Matrix train(0, names.size());
    std::unique_ptr<sensor::SensorModel> model;
    std::optional<sensor::StreamScorer> stream;
    // The model is fitted on its own thread (hundreds of channels take tens
    // of seconds) so the poller keeps its schedule; rows that arrive
    // meanwhile wait in `pending` and are scored, in order, once it is ready.
    struct Fitted {
      std::unique_ptr<sensor::SensorModel> model;
      std::optional<sensor::StreamScorer> stream;
    };
    std::future<Fitted> fitting;
    std::vector<sensor::ModbusSample> pending;
    const auto start = std::chrono::steady_clock::now();
    auto values_line = [](const sensor::ModbusSample& s) {
      std::string line = iso_time(s.time);
      for (double v : s.values) line += "," + format_score(v);
      return line;
    };
    auto print_scored = [&](const sensor::ModbusSample& s) {
      const auto res = stream->push(s.values.data());
      const std::string line = values_line(s) + "," + format_score(res.score) + "," +
                               (res.anomaly ? "1" : "0");
      std::printf("%s\n", line.c_str());
    };
    auto take_model = [&] {  // the fit is done: score what waited
      Fitted f = fitting.get();  // rethrows the fit's error
      model = std::move(f.model);
      stream.emplace(std::move(*f.stream));
      for (const auto& s : pending) print_scored(s);
      pending.clear();
    };
    auto sink = [&](const sensor::ModbusSample& s) {
      if (!pipeline) {
        std::printf("%s\n", values_line(s).c_str());
      } else if (model) {
        print_scored(s);
      } else if (!fitting.valid()) {
        train.append_row(s.values.data());
        std::printf("%s,,\n", values_line(s).c_str());
        if (train.rows == opt->train_rows)
          fitting = std::async(std::launch::async, [&names, &train, &pipeline] {
            Fitted f;
            f.model = std::make_unique<sensor::SensorModel>(names, train, *pipeline);
            f.stream.emplace(f.model->stream());
            for (size_t r = 0; r < train.rows; ++r) f.stream->push(train.row(r));  // warm the state
            return f;
          });
      } else {
        pending.push_back(s);
        if (fitting.wait_for(std::chrono::seconds(0)) == std::future_status::ready) take_model();
      }
      std::fflush(stdout);
    };
    auto event = [](const std::string& msg) { std::fprintf(stderr, "mmfuse: %s\n", msg.c_str()); };
    // Stops the poller on a signal or when --duration has passed, even while
    // the device is down and no sample arrives.
    std::atomic<bool> done{false};
    std::thread watcher([&] {
      while (!done) {
        const double elapsed =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (g_signalled || (opt->duration > 0 && elapsed >= opt->duration)) {
          poller.stop();
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
    try {
      poller.run(sink, opt->count, event);
      if (fitting.valid()) take_model();  // stopped mid-fit: finish it, lose no row
      std::fflush(stdout);
    } catch (...) {
      done = true;
      watcher.join();
      throw;
    }
    done = true;
    watcher.join();
  });
}

}  // namespace

void register_sensor(CLI::App& app) {
  auto* sensor = app.add_subcommand("sensor", "Sensor anomaly detection (CSV, Modbus, SKAB)");
  sensor->require_subcommand(1);
  register_detect(sensor);
  register_eval(sensor);
  register_bench_cmd(sensor);
  register_poll(sensor);
}

}  // namespace mmfuse::cli
