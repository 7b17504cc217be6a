// The SKAB outlier-detection protocol (github.com/waico/SKAB, core/utils.py and
// core/metrics.py): every anomaly file is split at row `train_rows` (400) without
// shuffling; the model is fitted on the first part and predicts the rest; the
// binary confusion counts on the `anomaly` column of the test parts are summed
// over all files, and
//   F1  = TP / (TP + (FP + FN) / 2)
//   FAR = FP / (FP + TN) * 100 %
//   MAR = FN / (FN + TP) * 100 %
// (SKAB rounds F1 to 2 decimals and the rates to 2 decimals of a percent.)
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "detect/pipeline.h"

namespace mmfuse::sensor {

struct Confusion {
  size_t tp = 0, tn = 0, fp = 0, fn = 0;
  Confusion& operator+=(const Confusion& o) {
    tp += o.tp, tn += o.tn, fp += o.fp, fn += o.fn;
    return *this;
  }
};

struct OutlierMetrics {
  double f1 = 0.0, far = 0.0, mar = 0.0;  // far, mar in percent
};
OutlierMetrics outlier_metrics(const Confusion& c);

struct SkabFileResult {
  std::string file;  // relative to the SKAB folder
  Confusion confusion;
  double threshold = 0.0;
};

struct SkabResult {
  std::string method;
  std::vector<SkabFileResult> files;
  Confusion total;
  OutlierMetrics metrics;
};

// The SKAB outlier-detection leaderboard (README at commit b2c0d46, "Proposed
// Leaderboard", test-set evaluation over 34 files, valve2 included).
// `method` names the mmfuse detector of the same family ("" if none).
struct LeaderboardEntry {
  const char* algorithm;
  const char* method;
  double f1, far, mar;
};
const std::vector<LeaderboardEntry>& skab_leaderboard();

// The anomaly files under a SKAB data folder (any depth; anomaly-free files
// are skipped), sorted by folder then by numeric file name. Throws
// ErrorKind::not_found when the folder does not exist or holds none.
std::vector<std::filesystem::path> find_skab_files(const std::filesystem::path& dir);

// Runs the protocol for one pipeline configuration over the given files,
// `threads` files at a time.
SkabResult evaluate_skab(const std::filesystem::path& dir,
                         const std::vector<std::filesystem::path>& files,
                         const PipelineOptions& options, size_t train_rows, int threads);

}  // namespace mmfuse::sensor
