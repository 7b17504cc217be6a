// `mmfuse sound ...`: the inspection robot's sound anomaly detection (chapter
// section 6): fit an unsupervised detector on normal clips, judge clips with it
// or with a trained CNN+LSTM classifier, print features, evaluate on a DCASE
// folder, and time the scoring of 10 s clips.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numbers>
#include <random>

#include "audio/audio_encode.h"
#include "audio/audio_files.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "core/thread_pool.h"
#include "detect/gaussian_detector.h"
#include "detect/sound_detector.h"
#include "io/model_folder.h"
#include "mmfuse/error.h"
#include "mmfuse/sound.h"
#include "tools/sound_eval.h"

namespace mmfuse::cli {

namespace {

namespace fs = std::filesystem;

// Options shared by `fit` and `eval` that shape the Gaussian detector.
struct GaussianOptions {
  std::string feature = "mfcc";
  int context = 1;
  bool clip_mean_norm = false;
  double shrinkage = 0.1;
  double sigma = 3.0;
  double false_alarm_rate = 0.0;  // when set, replaces sigma
  std::string normalize = "peak";
  bool no_trim = false;

  void add_to(CLI::App* cmd) {
    cmd->add_option(
           "--feature", feature,
           "Frame feature: mfcc (MFCC-40, 25 ms / 10 ms) or log_mel (128 bands, 64 ms / 32 ms)")
        ->check(CLI::IsMember({"log_mel", "mfcc"}));
    cmd->add_option("--context", context, "Frames stacked into one vector")
        ->check(CLI::Range(1, 32));
    cmd->add_flag(
        "--clip-mean-norm", clip_mean_norm,
        "Subtract each clip's mean spectrum (robust to microphone/domain shifts, blind to "
        "steady spectral changes)");
    cmd->add_option("--shrinkage", shrinkage, "Covariance shrinkage towards a scaled identity")
        ->check(CLI::Range(1e-6, 1.0));
    auto* s = cmd->add_option("--sigma", sigma,
                              "Threshold = mean + sigma * std of held-out normal scores");
    cmd->add_option("--false-alarm-rate", false_alarm_rate,
                    "Target share of normal segments flagged (sets sigma from a Gaussian fit "
                    "of the held-out normal scores; default 3 sigma = 0.00135)")
        ->check(CLI::Range(1e-12, 0.5))
        ->excludes(s);
    cmd->add_option("--normalize", normalize, "Loudness normalisation: none, peak or rms")
        ->check(CLI::IsMember({"none", "peak", "rms"}));
    cmd->add_flag("--no-trim", no_trim, "Keep leading/trailing silence");
  }

  GaussianDetectorConfig config() const {
    GaussianDetectorConfig c;
    c.feature = feature == "mfcc" ? FrameFeature::mfcc : FrameFeature::log_mel;
    if (c.feature == FrameFeature::log_mel) c.features = dcase_log_mel_features();
    c.context = context;
    c.clip_mean_norm = clip_mean_norm;
    c.shrinkage = shrinkage;
    c.threshold_sigma =
        false_alarm_rate > 0.0 ? sigma_for_false_alarm_rate(false_alarm_rate) : sigma;
    c.preprocess.normalize = parse_normalize_mode(normalize, "--normalize");
    c.preprocess.trim.enabled = !no_trim;
    return c;
  }
};

Json verdict_json(const std::string& file, const SoundResult& v,
                  const std::optional<double>& threshold) {
  Json j = {{"file", file}, {"score", v.score}, {"anomaly", v.anomaly ? 1 : 0}};
  j["threshold"] = threshold ? Json(*threshold) : Json(nullptr);
  j["probability"] = std::isnan(v.probability) ? Json(nullptr) : Json(v.probability);
  j["seconds"] = v.seconds;
  if (!v.label.empty()) {
    j["label"] = v.label;
    Json probs = Json::object();
    for (const auto& [label, p] : v.probabilities) probs[label] = p;
    j["probabilities"] = probs;
  }
  return j;
}

Json nan_to_null(double v) {
  return std::isnan(v) ? Json(nullptr) : Json(v);
}

std::string fmt(double v, const char* spec = "%.3f") {
  if (std::isnan(v)) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof(buf), spec, v);
  return buf;
}

void register_fit(CLI::App* sound) {
  struct Options {
    std::vector<std::string> normal;
    std::string out;
    GaussianOptions g;
    int threads = 0;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = sound->add_subcommand("fit", "Fit the unsupervised detector on normal clips only");
  cmd->add_option("--normal", opt->normal, "Normal clips or folders of them (repeatable)")
      ->required()
      ->expected(1, -1);
  cmd->add_option("--out", opt->out, "Model folder to write")->required();
  opt->g.add_to(cmd);
  add_threads_option(cmd, &opt->threads);
  cmd->callback([opt] {
    apply_threads(opt->threads);
    const auto files = collect_audio_files(opt->normal, "--normal");
    GaussianDetector det(opt->g.config());
    const auto feats = det.features_of_files(*command_pool(), files);
    det.fit(feats);
    const Calibration cal = det.calibrate_threshold(*command_pool(), feats);
    det.save(opt->out, {{"normal_clips", files.size()}});
    print_json({{"model", opt->out},
                {"model_type", "sound_gaussian"},
                {"clips", files.size()},
                {"frames", det.training_frames()},
                {"dim", det.config().dim()},
                {"threshold", det.threshold()},
                {"calibration",
                 {{"rule", "mean + sigma * std of held-out segment scores"},
                  {"sigma", det.config().threshold_sigma},
                  {"false_alarm_rate", false_alarm_rate_for_sigma(det.config().threshold_sigma)},
                  {"folds", cal.folds},
                  {"segments", cal.segments},
                  {"mean", cal.mean},
                  {"std", cal.std},
                  {"max", cal.max}}}});
  });
}

void register_detect(CLI::App* sound) {
  struct Options {
    std::string model;
    std::vector<std::string> audio;
    double threshold = std::numeric_limits<double>::quiet_NaN();
    int threads = 0;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd =
      sound->add_subcommand("detect", "Score clips with a sound model (Gaussian or CNN+LSTM)");
  cmd->add_option("--model", opt->model,
                  "Model folder (from `sound fit` or training/train_sound.py)")
      ->required();
  cmd->add_option("audio", opt->audio, "Audio files or folders")->required()->expected(1, -1);
  cmd->add_option("--threshold", opt->threshold, "Override the model's anomaly threshold");
  add_threads_option(cmd, &opt->threads);
  cmd->callback([opt] {
    apply_threads(opt->threads);
    auto det = SoundModel::open(opt->model, command_pool());
    if (!std::isnan(opt->threshold)) det->set_threshold(opt->threshold);
    std::vector<std::string> files;
    for (const auto& f : collect_audio_files(opt->audio, "audio")) files.push_back(f.string());
    const std::vector<SoundResult> verdicts = det->judge_files(files);
    Json results = Json::array();
    for (size_t i = 0; i < files.size(); ++i)
      results.push_back(verdict_json(files[i], verdicts[i], det->threshold()));
    Json out = {{"model", opt->model}, {"model_type", det->model_type()}};
    out["threshold"] = det->threshold() ? Json(*det->threshold()) : Json(nullptr);
    out["decision"] = det->threshold() ? "score >= threshold" : "predicted class != normal label";
    out["results"] = results;
    print_json(out);
  });
}

void register_features(CLI::App* sound) {
  struct Options {
    std::string audio, kind = "mfcc", model;
    bool raw = false, standardize = false;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = sound->add_subcommand("features", "Print a clip's MFCC or log-mel frames");
  cmd->add_option("audio", opt->audio, "Audio file")->required();
  cmd->add_option("--kind", opt->kind, "mfcc or log_mel")
      ->check(CLI::IsMember({"mfcc", "log_mel"}));
  cmd->add_option("--model", opt->model,
                  "Use this model folder's feature and pre-processing settings");
  cmd->add_flag("--raw", opt->raw, "Skip normalisation and silence removal (still resampled)");
  cmd->add_flag("--standardize", opt->standardize, "Standardise each coefficient over the clip");
  cmd->callback([opt] {
    FeatureConfig features;
    AudioPreprocessConfig pre;
    if (!opt->model.empty()) {
      const fs::path config_path = fs::path(opt->model) / "config.json";
      const nlohmann::json j = read_json_file(config_path);
      JsonFields f(j, config_path.string());
      MMFUSE_CHECK(f.has("features"), bad_input, config_path.string() + ": no \"features\" object");
      features = feature_config_from_json(j["features"], config_path.string() + " features");
      if (f.has("preprocess"))
        pre = preprocess_config_from_json(j["preprocess"], config_path.string() + " preprocess");
    }
    pre.sample_rate = features.sample_rate;
    if (opt->raw) {
      pre.normalize = NormalizeMode::none;
      pre.trim.enabled = false;
    }
    const std::vector<float> samples = load_audio(opt->audio, pre);
    const MelExtractor mel(features);
    std::vector<float> data = opt->kind == "mfcc" ? mel.mfcc(samples) : mel.log_mel(samples);
    const size_t dim = static_cast<size_t>(opt->kind == "mfcc" ? features.n_mfcc : features.n_mels);
    const size_t frames = data.size() / dim;
    if (opt->standardize) standardize_columns(data.data(), frames, dim);
    Json rows = Json::array();
    for (size_t t = 0; t < frames; ++t) rows.push_back(float_array(data.data() + t * dim, dim));
    print_json({{"file", opt->audio},
                {"kind", opt->kind},
                {"sample_rate", features.sample_rate},
                {"seconds", static_cast<double>(samples.size()) / features.sample_rate},
                {"frames", frames},
                {"dim", dim},
                {"features", feature_config_to_json(features)},
                {"preprocess", preprocess_config_to_json(pre)},
                {"data", rows}});
  });
}

void register_eval(CLI::App* sound) {
  struct Options {
    std::string dcase;
    bool synthetic = false, json = false;
    GaussianOptions g;
    int threads = 0;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = sound->add_subcommand("eval",
                                    "AUC and F1 per machine type on a DCASE-style folder (fit on "
                                    "train normals, score test clips)");
  cmd->add_option("--dcase", opt->dcase,
                  "Folder of machine-type sub-folders with DCASE-named clips")
      ->required();
  cmd->add_flag("--synthetic", opt->synthetic,
                "Also mix documented synthetic faults into held-out normal clips (docs/sound.md)");
  cmd->add_flag("--json", opt->json, "Print one JSON object");
  opt->g.add_to(cmd);
  add_threads_option(cmd, &opt->threads);
  cmd->callback([opt] {
    apply_threads(opt->threads);
    const auto clips = scan_dcase_folder(opt->dcase);
    EvalOptions eval;
    eval.synthetic = opt->synthetic;
    const GaussianDetectorConfig config = opt->g.config();
    const auto results = evaluate_sound_detector(clips, config, eval, *command_pool());

    // Pooled over machine types: each machine has its own model and threshold,
    // so F1 pools the decisions; AUC is the mean of the per-machine AUCs. DCASE
    // 2023 task 2 ranks systems by the harmonic mean of every type's source-
    // and target-domain AUCs and pAUC.
    BinaryCounts all, all_syn;
    double auc_sum = 0, syn_sum = 0;
    size_t auc_n = 0, syn_n = 0;
    std::vector<double> aucs, paucs, official;
    for (const auto& r : results) {
      if (!std::isnan(r.auc)) aucs.push_back(r.auc), paucs.push_back(r.pauc);
      for (double v : {r.auc_source, r.auc_target, r.pauc})
        if (!std::isnan(v)) official.push_back(v);
      all.tp += r.counts.tp, all.fp += r.counts.fp, all.tn += r.counts.tn, all.fn += r.counts.fn;
      all_syn.tp += r.synthetic_counts.tp, all_syn.fp += r.synthetic_counts.fp;
      all_syn.tn += r.synthetic_counts.tn, all_syn.fn += r.synthetic_counts.fn;
      if (!std::isnan(r.auc)) auc_sum += r.auc, ++auc_n;
      if (opt->synthetic && !std::isnan(r.synthetic_auc)) syn_sum += r.synthetic_auc, ++syn_n;
    }
    const double mean_auc = auc_n ? auc_sum / static_cast<double>(auc_n) : std::nan("");
    const double mean_syn = syn_n ? syn_sum / static_cast<double>(syn_n) : std::nan("");
    const double hmean_auc = harmonic_mean(aucs), hmean_pauc = harmonic_mean(paucs);
    const double dcase_score = harmonic_mean(official);
    if (opt->json) {
      Json machines = Json::array();
      for (const auto& r : results) {
        Json m = {{"machine", r.machine},
                  {"train_clips", r.train_clips},
                  {"test_normal", r.test_normal},
                  {"test_anomaly", r.test_anomaly},
                  {"threshold", nan_to_null(r.threshold)},
                  {"auc", nan_to_null(r.auc)},
                  {"pauc", nan_to_null(r.pauc)},
                  {"auc_source", nan_to_null(r.auc_source)},
                  {"auc_target", nan_to_null(r.auc_target)},
                  {"f1", r.counts.f1()},
                  {"false_alarm_rate", r.counts.fp + r.counts.tn
                                           ? Json(static_cast<double>(r.counts.fp) /
                                                  static_cast<double>(r.counts.fp + r.counts.tn))
                                           : Json(nullptr)},
                  {"tp", r.counts.tp},
                  {"fp", r.counts.fp},
                  {"tn", r.counts.tn},
                  {"fn", r.counts.fn}};
        Json scores = Json::array();
        for (const auto& [file, s] : r.test_scores)
          scores.push_back({{"file", file}, {"score", s}});
        m["test_scores"] = scores;
        if (opt->synthetic) {
          Json by_fault = Json::object();
          for (const auto& [fault, auc] : r.synthetic_auc_by_fault)
            by_fault[fault] = nan_to_null(auc);
          m["synthetic"] = {{"normal_segments", r.synthetic_normal},
                            {"anomalous_segments", r.synthetic_anomaly},
                            {"auc", nan_to_null(r.synthetic_auc)},
                            {"f1", r.synthetic_counts.f1()},
                            {"false_alarm_rate",
                             r.synthetic_normal ? Json(static_cast<double>(r.synthetic_counts.fp) /
                                                       static_cast<double>(r.synthetic_normal))
                                                : Json(nullptr)},
                            {"auc_by_fault", by_fault}};
        }
        machines.push_back(m);
      }
      Json out = {{"dcase", opt->dcase},
                  {"detector", gaussian_config_to_json(config)},
                  {"machines", machines},
                  {"mean_auc", nan_to_null(mean_auc)},
                  {"pauc_max_fpr", 0.1},
                  {"hmean_auc", nan_to_null(hmean_auc)},
                  {"hmean_pauc", nan_to_null(hmean_pauc)},
                  {"dcase_score", nan_to_null(dcase_score)},
                  {"pooled_f1", all.f1()}};
      if (opt->synthetic)
        out["synthetic"] = {{"mean_auc", nan_to_null(mean_syn)}, {"pooled_f1", all_syn.f1()}};
      print_json(out);
      return;
    }
    std::printf("%-10s %5s %6s %7s %9s %6s %6s %6s", "machine", "train", "normal", "anomaly",
                "threshold", "AUC", "pAUC", "F1");
    if (opt->synthetic) std::printf(" | %8s %6s %6s", "syn.segs", "synAUC", "synF1");
    std::printf("\n");
    for (const auto& r : results) {
      std::printf("%-10s %5zu %6zu %7zu %9s %6s %6s %6s", r.machine.c_str(), r.train_clips,
                  r.test_normal, r.test_anomaly, fmt(r.threshold).c_str(), fmt(r.auc).c_str(),
                  fmt(r.pauc).c_str(),
                  r.test_normal + r.test_anomaly ? fmt(r.counts.f1()).c_str() : "n/a");
      if (opt->synthetic)
        std::printf(" | %8zu %6s %6s", r.synthetic_normal + r.synthetic_anomaly,
                    fmt(r.synthetic_auc).c_str(), fmt(r.synthetic_counts.f1()).c_str());
      std::printf("\n");
    }
    std::printf("%-10s %5s %6s %7s %9s %6s %6s %6s", "all", "", "", "", "", fmt(mean_auc).c_str(),
                "", fmt(all.f1()).c_str());
    if (opt->synthetic)
      std::printf(" | %8s %6s %6s", "", fmt(mean_syn).c_str(), fmt(all_syn.f1()).c_str());
    std::printf("\n%-10s %5s %6s %7s %9s %6s %6s\n", "hmean", "", "", "", "",
                fmt(hmean_auc).c_str(), fmt(hmean_pauc).c_str());
    std::printf("DCASE score (harmonic mean of the source/target AUCs and pAUCs): %s\n",
                fmt(dcase_score).c_str());
    std::printf(
        "(AUC: per machine type, 'all' = their mean; pAUC: McClish-standardised partial AUC at "
        "FPR <= 0.1 as DCASE 2023 task 2; F1 at the fitted threshold, 'all' pooled)\n");
  });
}

// A 10 s "machine" clip: harmonics of a hum, broadband noise and a slow beat.
std::vector<float> synthetic_machine_clip(double seconds, int rate, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0.0, 0.05);
  std::vector<float> x(static_cast<size_t>(seconds * rate));
  for (size_t i = 0; i < x.size(); ++i) {
    const double t = static_cast<double>(i) / rate;
    double v = noise(rng);
    for (int k = 1; k <= 5; ++k) v += 0.3 / k * std::sin(2.0 * std::numbers::pi * 120.0 * k * t);
    x[i] = static_cast<float>(v * (1.0 + 0.1 * std::sin(2.0 * std::numbers::pi * 0.5 * t)));
  }
  return x;
}

void register_bench(CLI::App* sound) {
  struct Options {
    std::string model, audio;
    double seconds = 10.0;
    int clips = 40, threads = 0;
    bool json = false;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = sound->add_subcommand(
      "bench",
      "Clips per second for scoring clips end to end (decode, pre-process, features, model)");
  cmd->add_option("--model", opt->model,
                  "Model folder (default: a Gaussian detector fitted on synthetic clips)");
  cmd->add_option("--audio", opt->audio, "Clip to score (default: a synthetic clip of --seconds)");
  cmd->add_option("--seconds", opt->seconds, "Length of the synthetic clip")
      ->check(CLI::Range(0.5, 600.0));
  cmd->add_option("--clips", opt->clips, "Clips scored in the timed run")
      ->check(CLI::Range(1, 100000));
  cmd->add_flag("--json", opt->json, "Print one JSON object");
  add_threads_option(cmd, &opt->threads);
  cmd->callback([opt] {
    apply_threads(opt->threads);
    ThreadPool& pool = *command_pool();
    const fs::path dir =
        fs::temp_directory_path() / ("mmfuse_sound_bench_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    struct Cleanup {
      fs::path dir;
      ~Cleanup() {
        std::error_code ec;
        fs::remove_all(dir, ec);
      }
    } cleanup{dir};
    fs::path clip = opt->audio;
    if (clip.empty()) {
      clip = dir / "clip.wav";
      write_audio_file(clip, synthetic_machine_clip(opt->seconds, 16000, 7), 1, 16000,
                       SampleEncoding::pcm16);
    }
    std::string model = opt->model;
    if (model.empty()) {
      std::vector<fs::path> normals;
      for (uint32_t s = 0; s < 4; ++s) {
        normals.push_back(dir / ("normal_" + std::to_string(s) + ".wav"));
        write_audio_file(normals.back(), synthetic_machine_clip(opt->seconds, 16000, 100 + s), 1,
                         16000, SampleEncoding::pcm16);
      }
      GaussianDetector det{GaussianDetectorConfig{}};
      const auto feats = det.features_of_files(pool, normals);
      det.fit(feats);
      det.calibrate_threshold(pool, feats);
      model = (dir / "model").string();
      det.save(model);
    }
    const auto det = SoundDetector::load(model);
    const std::vector<fs::path> files(static_cast<size_t>(opt->clips), clip);
    judge_files(*det, std::vector<fs::path>(static_cast<size_t>(pool.size()), clip),
                pool);  // warm-up
    const auto t0 = std::chrono::steady_clock::now();
    const auto verdicts = judge_files(*det, files, pool);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double clip_s = verdicts.front().seconds;
    const double per_s = static_cast<double>(files.size()) / secs;
    if (opt->json) {
      print_json({{"model_type", det->model_type()},
                  {"threads", pool.size()},
                  {"clips", files.size()},
                  {"clip_seconds", clip_s},
                  {"clips_per_s", per_s},
                  {"ms_per_clip", 1000.0 / per_s},
                  {"realtime_factor", per_s * clip_s}});
    } else {
      std::printf(
          "%s, %d threads: %zu clips of %.1f s in %.2f s = %.1f clips/s (%.1f ms/clip, %.0fx real "
          "time)\n",
          det->model_type().c_str(), pool.size(), files.size(), clip_s, secs, per_s, 1000.0 / per_s,
          per_s * clip_s);
    }
  });
}

}  // namespace

void register_sound(CLI::App& app) {
  auto* sound =
      app.add_subcommand("sound", "Sound anomaly detection (MFCC / log-mel, Gaussian, CNN+LSTM)");
  sound->require_subcommand(1);
  register_fit(sound);
  register_detect(sound);
  register_features(sound);
  register_eval(sound);
  register_bench(sound);
}

}  // namespace mmfuse::cli
