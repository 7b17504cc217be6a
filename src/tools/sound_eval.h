// Evaluation of sound anomaly detectors: ROC AUC and F1 at the detector's
// threshold, per machine type, on a DCASE-style folder (the shared DCASE 2023
// task 2 sample or the full development set), optionally with synthetic faults
// (tools/fault_synth.h) mixed into held-out normal clips.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "detect/gaussian_detector.h"

namespace mmfuse {

// Area under the ROC curve (Mann-Whitney U; ties count half). labels: 1 = anomaly.
// NaN when either class is missing.
double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels);

// DCASE's partial AUC: the ROC area for false-positive rates in [0, max_fpr],
// with the point at max_fpr linearly interpolated, standardised by McClish's
// correction so that chance scores 0.5 and a perfect ranking 1 — what
// sklearn.metrics.roc_auc_score(labels, scores, max_fpr=p) returns and DCASE
// 2023 task 2 reports with p = 0.1. NaN when either class is missing.
double partial_roc_auc(const std::vector<double>& scores, const std::vector<int>& labels,
                       double max_fpr);

// Harmonic mean (DCASE's official score: scipy.stats.hmean of the AUCs and
// pAUCs). 0 when any value is 0, NaN when there are none or any is NaN.
double harmonic_mean(const std::vector<double>& values);

struct BinaryCounts {
  size_t tp = 0, fp = 0, tn = 0, fn = 0;
  double precision() const {
    return tp + fp == 0 ? 0.0 : static_cast<double>(tp) / static_cast<double>(tp + fp);
  }
  double recall() const {
    return tp + fn == 0 ? 0.0 : static_cast<double>(tp) / static_cast<double>(tp + fn);
  }
  double f1() const {
    const double p = precision(), r = recall();
    return p + r == 0.0 ? 0.0 : 2.0 * p * r / (p + r);
  }
};
// Anomaly predicted when score >= threshold.
BinaryCounts count_predictions(const std::vector<double>& scores, const std::vector<int>& labels,
                               double threshold);

struct LabelledClip {
  std::filesystem::path path;
  std::string machine;  // machine type (the folder under the root)
  bool train = false;   // "train" split (normal clips to fit on) vs "test"
  bool anomaly = false;
  std::string domain;  // "source" / "target" when the name says so
};

// Scans ROOT/<machine>/**/*.wav. Split and label come from the DCASE file name
// (`..._{train|test}_{normal|anomaly}_...`, or train/ and test/ folders). A
// clip whose label cannot be read is an error naming it.
std::map<std::string, std::vector<LabelledClip>> scan_dcase_folder(
    const std::filesystem::path& root);

struct MachineResult {
  std::string machine;
  size_t train_clips = 0, test_normal = 0, test_anomaly = 0;
  double threshold = 0.0;  // NaN when there was nothing to test
  double auc = 0.0;        // NaN when the test set lacks a class
  double pauc = 0.0;       // partial AUC at max FPR 0.1 (DCASE); NaN likewise
  // DCASE's per-domain AUCs: the domain's test normals against all anomalies
  // (NaN when the domain has no test normal or there is no anomaly).
  double auc_source = 0.0, auc_target = 0.0;
  BinaryCounts counts;
  // Synthetic-fault evaluation (when asked for): fit on the first half of the
  // training normals, test on 2 s segments of the other half, each segment
  // clean and with every fault of tools/fault_synth.h mixed in.
  size_t synthetic_normal = 0, synthetic_anomaly = 0;
  double synthetic_auc = 0.0;
  BinaryCounts synthetic_counts;
  std::map<std::string, double> synthetic_auc_by_fault;
  std::vector<std::pair<std::string, double>> test_scores;  // file, score
};

struct EvalOptions {
  bool real = true;        // fit on train normals, score the test clips
  bool synthetic = false;  // also the synthetic-fault protocol
  double segment_s = 2.0;  // synthetic test segment length
};

// Runs the protocol for every machine type of `clips` with a detector built from `config`.
std::vector<MachineResult> evaluate_sound_detector(
    const std::map<std::string, std::vector<LabelledClip>>& clips,
    const GaussianDetectorConfig& config, const EvalOptions& options, ThreadPool& pool);

}  // namespace mmfuse
