#include "tools/sound_eval.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "audio/audio_files.h"
#include "mmfuse/error.h"
#include "tools/fault_synth.h"

namespace mmfuse {

namespace fs = std::filesystem;

double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels) {
  MMFUSE_ASSERT(scores.size() == labels.size());
  // Rank-sum with average ranks for ties.
  std::vector<size_t> order(scores.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  std::vector<double> rank(scores.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && scores[order[j + 1]] == scores[order[i]]) ++j;
    const double r = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;
    for (size_t k = i; k <= j; ++k) rank[order[k]] = r;
    i = j + 1;
  }
  double pos = 0, neg = 0, rank_sum = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i]) {
      pos += 1;
      rank_sum += rank[i];
    } else {
      neg += 1;
    }
  }
  if (pos == 0 || neg == 0) return std::numeric_limits<double>::quiet_NaN();
  return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg);
}

double partial_roc_auc(const std::vector<double>& scores, const std::vector<int>& labels,
                       double max_fpr) {
  MMFUSE_ASSERT(scores.size() == labels.size());
  MMFUSE_CHECK(max_fpr > 0.0 && max_fpr <= 1.0, bad_input, "max_fpr must be in (0, 1]");
  double pos = 0, neg = 0;
  for (int l : labels) (l ? pos : neg) += 1;
  if (pos == 0 || neg == 0) return std::numeric_limits<double>::quiet_NaN();
  // ROC points from the highest score down, one per distinct score (tied
  // scores move FPR and TPR together, a diagonal step, as sklearn's roc_curve).
  std::vector<size_t> order(scores.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  double area = 0, fpr = 0, tpr = 0, tp = 0, fp = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) {
      (labels[order[j]] ? tp : fp) += 1;
      ++j;
    }
    i = j;
    const double next_fpr = fp / neg, next_tpr = tp / pos;
    if (next_fpr > max_fpr) {  // the segment crossing max_fpr: interpolate and stop
      const double t = tpr + (next_tpr - tpr) * (max_fpr - fpr) / (next_fpr - fpr);
      area += (max_fpr - fpr) * (tpr + t) / 2.0;
      fpr = max_fpr;
      break;
    }
    area += (next_fpr - fpr) * (tpr + next_tpr) / 2.0;
    fpr = next_fpr, tpr = next_tpr;
  }
  if (max_fpr == 1.0) return area;
  const double min_area = 0.5 * max_fpr * max_fpr, max_area = max_fpr;
  return 0.5 * (1.0 + (area - min_area) / (max_area - min_area));
}

double harmonic_mean(const std::vector<double>& values) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  double inv = 0;
  for (double v : values) {
    if (std::isnan(v)) return v;
    if (v <= 0.0) return 0.0;
    inv += 1.0 / v;
  }
  return static_cast<double>(values.size()) / inv;
}

BinaryCounts count_predictions(const std::vector<double>& scores, const std::vector<int>& labels,
                               double threshold) {
  BinaryCounts c;
  for (size_t i = 0; i < scores.size(); ++i) {
    const bool predicted = scores[i] >= threshold;
    if (labels[i]) {
      predicted ? ++c.tp : ++c.fn;
    } else {
      predicted ? ++c.fp : ++c.tn;
    }
  }
  return c;
}

namespace {

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

std::map<std::string, std::vector<LabelledClip>> scan_dcase_folder(const fs::path& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec))
    throw_error(fs::exists(root, ec) ? ErrorKind::bad_input : ErrorKind::not_found,
                root.string() + ": not a folder of machine-type sub-folders");
  std::map<std::string, std::vector<LabelledClip>> out;
  std::vector<fs::path> machines;
  for (const auto& entry : fs::directory_iterator(root, ec))
    if (entry.is_directory()) machines.push_back(entry.path());
  std::sort(machines.begin(), machines.end());
  for (const fs::path& dir : machines) {
    for (const fs::path& file : collect_audio_files({dir.string()}, "DCASE machine folder")) {
      const std::string name = file.filename().string();
      const std::string rel = fs::relative(file, dir).string();
      LabelledClip clip;
      clip.path = file;
      clip.machine = dir.filename().string();
      // Test markers win: the shared sample's names start with "<machine>_train_"
      // or "<machine>_test_" and then carry DCASE's own "_source_test_" etc.
      const bool test = contains(name, "_test_") || rel.rfind("test/", 0) == 0;
      const bool train = contains(name, "_train_") || rel.rfind("train/", 0) == 0;
      MMFUSE_CHECK(test || train, bad_input,
                   file.string() + ": cannot tell train from test (DCASE name expected)");
      clip.train = !test;
      const bool anomaly = contains(name, "_anomaly_") || contains(name, "anomaly_");
      const bool normal = contains(name, "_normal_") || contains(name, "normal_");
      MMFUSE_CHECK(anomaly != normal, bad_input,
                   file.string() + ": cannot tell normal from anomaly (DCASE name expected)");
      clip.anomaly = anomaly;
      clip.domain = contains(name, "_target_")   ? "target"
                    : contains(name, "_source_") ? "source"
                                                 : "";
      MMFUSE_CHECK(
          !(clip.train && clip.anomaly), bad_input,
          file.string() + ": an anomaly in the training split (only normal clips are fitted)");
      out[clip.machine].push_back(clip);
    }
  }
  MMFUSE_CHECK(!out.empty(), bad_input, root.string() + ": no machine-type sub-folders with audio");
  return out;
}

namespace {

// Pre-processed samples of every file, decoded in parallel (one file per core).
std::vector<std::vector<float>> load_all(const std::vector<fs::path>& files,
                                         const AudioPreprocessConfig& pre, ThreadPool& pool) {
  std::vector<std::vector<float>> out(files.size());
  pool.parallel_tasks(files.size(), [&](size_t i, int) { out[i] = load_audio(files[i], pre); });
  return out;
}

std::vector<std::vector<float>> features_of(const GaussianDetector& det,
                                            const std::vector<std::vector<float>>& clips,
                                            ThreadPool& pool) {
  std::vector<std::vector<float>> out(clips.size());
  pool.parallel_tasks(clips.size(), [&](size_t i, int) { out[i] = det.frame_features(clips[i]); });
  return out;
}

std::vector<double> scores_of(const GaussianDetector& det,
                              const std::vector<std::vector<float>>& feats, ThreadPool& pool) {
  std::vector<double> out(feats.size());
  std::vector<std::unique_ptr<ThreadPool>> serial(static_cast<size_t>(pool.size()));
  for (auto& p : serial) p = std::make_unique<ThreadPool>(1);
  pool.parallel_tasks(feats.size(), [&](size_t i, int w) {
    out[i] = det.score(*serial[static_cast<size_t>(w)], feats[i]);
  });
  return out;
}

void run_real(const std::vector<LabelledClip>& clips, const GaussianDetectorConfig& config,
              ThreadPool& pool, MachineResult& r) {
  std::vector<fs::path> train, test;
  std::vector<int> labels;
  std::vector<std::string> domains;
  for (const auto& c : clips) {
    if (c.train) {
      train.push_back(c.path);
    } else {
      test.push_back(c.path);
      labels.push_back(c.anomaly ? 1 : 0);
      domains.push_back(c.domain);
      (c.anomaly ? r.test_anomaly : r.test_normal) += 1;
    }
  }
  r.train_clips = train.size();
  r.auc = std::numeric_limits<double>::quiet_NaN();
  r.pauc = r.auc_source = r.auc_target = r.auc;
  r.threshold = std::numeric_limits<double>::quiet_NaN();
  if (train.empty() || test.empty()) return;
  GaussianDetector det(config);
  const auto train_feats = det.features_of_files(pool, train);
  det.fit(train_feats);
  det.calibrate_threshold(pool, train_feats);
  const std::vector<double> scores = scores_of(det, det.features_of_files(pool, test), pool);
  r.threshold = det.threshold();
  r.auc = roc_auc(scores, labels);
  r.pauc = partial_roc_auc(scores, labels, 0.1);
  for (const char* domain : {"source", "target"}) {
    std::vector<double> s;
    std::vector<int> l;
    for (size_t i = 0; i < scores.size(); ++i)
      if (labels[i] || domains[i] == domain) s.push_back(scores[i]), l.push_back(labels[i]);
    (std::string(domain) == "source" ? r.auc_source : r.auc_target) = roc_auc(s, l);
  }
  r.counts = count_predictions(scores, labels, det.threshold());
  for (size_t i = 0; i < test.size(); ++i)
    r.test_scores.emplace_back(test[i].filename().string(), scores[i]);
}

void run_synthetic(const std::vector<LabelledClip>& clips, const GaussianDetectorConfig& config,
                   const EvalOptions& opt, ThreadPool& pool, MachineResult& r) {
  std::vector<fs::path> normals;
  for (const auto& c : clips)
    if (c.train) normals.push_back(c.path);  // the source-domain training normals
  r.synthetic_auc = std::numeric_limits<double>::quiet_NaN();
  if (normals.size() < 2) return;
  const size_t fit_count = normals.size() / 2;
  const auto audio = load_all(normals, config.preprocess, pool);
  GaussianDetector det(config);
  const std::vector<std::vector<float>> fit_audio(audio.begin(),
                                                  audio.begin() + static_cast<long>(fit_count));
  const auto fit_feats = features_of(det, fit_audio, pool);
  det.fit(fit_feats);
  det.calibrate_threshold(pool, fit_feats);

  // Held-out clips cut into segments; each segment clean and with every fault.
  const size_t seg = static_cast<size_t>(opt.segment_s * config.preprocess.sample_rate);
  std::vector<std::vector<float>> segments;
  std::vector<int> labels;
  std::vector<std::string> kinds;
  uint32_t seed = 1;
  for (size_t i = fit_count; i < audio.size(); ++i)
    for (size_t b = 0; b + seg <= audio[i].size(); b += seg) {
      std::vector<float> clean(audio[i].begin() + static_cast<long>(b),
                               audio[i].begin() + static_cast<long>(b + seg));
      for (SyntheticFault fault : all_synthetic_faults()) {
        segments.push_back(inject_fault(clean, config.preprocess.sample_rate, fault, seed++));
        labels.push_back(1);
        kinds.push_back(to_string(fault));
      }
      segments.push_back(std::move(clean));
      labels.push_back(0);
      kinds.push_back("normal");
    }
  if (segments.empty()) return;
  const std::vector<double> scores = scores_of(det, features_of(det, segments, pool), pool);
  r.synthetic_auc = roc_auc(scores, labels);
  r.synthetic_counts = count_predictions(scores, labels, det.threshold());
  for (int l : labels) (l ? r.synthetic_anomaly : r.synthetic_normal) += 1;
  for (SyntheticFault fault : all_synthetic_faults()) {
    std::vector<double> s;
    std::vector<int> l;
    for (size_t i = 0; i < scores.size(); ++i)
      if (kinds[i] == "normal" || kinds[i] == to_string(fault)) {
        s.push_back(scores[i]);
        l.push_back(labels[i]);
      }
    r.synthetic_auc_by_fault[to_string(fault)] = roc_auc(s, l);
  }
}

}  // namespace

std::vector<MachineResult> evaluate_sound_detector(
    const std::map<std::string, std::vector<LabelledClip>>& clips,
    const GaussianDetectorConfig& config, const EvalOptions& options, ThreadPool& pool) {
  std::vector<MachineResult> results;
  for (const auto& [machine, list] : clips) {
    MachineResult r;
    r.machine = machine;
    if (options.real) run_real(list, config, pool, r);
    if (options.synthetic) run_synthetic(list, config, options, pool, r);
    results.push_back(std::move(r));
  }
  return results;
}

}  // namespace mmfuse
