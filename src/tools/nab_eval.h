// NAB evaluation for `mmfuse sensor eval --nab DIR`: reads a NAB corpus
// (DIR/data/<category>/<file>.csv with timestamp,value; the label windows in
// DIR/labels/combined_windows*.json; the cost profiles in DIR/profiles.json or
// DIR/config/profiles.json), obtains per-row anomaly scores (an mmfuse
// detector run as `sensor detect` runs it, or a published detector's NAB
// results folder) and scores them with tools/nab_scorer.h: one threshold
// optimised over the whole corpus per profile, normalised between the null
// and the perfect detector.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "detect/pipeline.h"
#include "tools/nab_scorer.h"

namespace mmfuse::sensor {

struct NabProfile {
  std::string name;  // "standard", "reward_low_FP_rate", "reward_low_FN_rate"
  NabCosts costs;
};

struct NabFile {
  std::string name;  // relative to DIR/data, '/'-separated
  std::vector<std::string> times;
  std::vector<double> values;
  std::vector<NabWindow> windows;
};

struct NabCorpus {
  std::vector<NabFile> files;  // sorted by name
  std::vector<NabProfile> profiles;
};

// Loads DIR (see above). Every data file must have an entry in the label file
// and every window edge must be one of its time stamps (bad_input otherwise,
// naming the file); not_found when DIR lacks data/ or labels.
NabCorpus load_nab_corpus(const std::filesystem::path& dir);

// Profile by name; "low_fp" / "low_fn" are accepted for the reward_low_* ones.
const NabProfile& find_nab_profile(const NabCorpus& corpus, const std::string& name);

// Per-row anomaly scores for every corpus file (same order and lengths).
struct NabDetections {
  std::string detector;
  std::vector<std::vector<double>> scores;
  // The detector's own binary decisions (mmfuse detectors only).
  std::vector<std::vector<double>> flags;
};

// Runs an mmfuse pipeline on every file as `sensor detect` does with
// `train_rows` = the file's probation rows (the part NAB lets a detector
// learn from), the sampling interval taken from the timestamps. `threads`
// files at a time.
NabDetections nab_run_pipeline(const NabCorpus& corpus, const PipelineOptions& options,
                               int threads);

// Reads a published detector's NAB results folder (DIR/<category>/<name>_<file>.csv
// with an anomaly_score column; <name> = the folder's name).
NabDetections nab_read_results(const NabCorpus& corpus, const std::filesystem::path& dir);

struct NabFileScore {
  std::string file;
  double score = 0.0;
  size_t tp = 0, tn = 0, fp = 0, fn = 0;
};

struct NabResult {
  std::string profile;
  double threshold = 0.0;  // optimised (or the one given)
  double score = 0.0, null_score = 0.0, perfect_score = 0.0;
  double normalized = 0.0;
  size_t tp = 0, tn = 0, fp = 0, fn = 0;
  size_t windows = 0;
  std::vector<NabFileScore> files;
};

// Scores per-row anomaly scores over the corpus: threshold optimised over all
// files when `threshold` is empty. `rank_normalize` first replaces each
// file's scores by their ranks (a common comparison protocol across detectors
// with incomparable score scales).
NabResult nab_score(const NabCorpus& corpus, const std::vector<std::vector<double>>& scores,
                    const NabProfile& profile, std::optional<double> threshold,
                    bool rank_normalize = false);

// A published scoreboard row set (DIR/<name>_<profile>_scores.csv, NAB's
// per-file raw scores with a Totals row) normalised as NAB's runner does:
// the null detector's totals from DIR/../null/null_<profile>_scores.csv and
// perfect = A_TP x the corpus's window count (= -null / A_FN).
struct NabScoreboardEntry {
  std::string detector, profile;
  double total = 0.0, null_total = 0.0, normalized = 0.0;
};
NabScoreboardEntry nab_scoreboard_entry(const std::filesystem::path& dir,
                                        const NabProfile& profile);

}  // namespace mmfuse::sensor
