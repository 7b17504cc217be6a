// The Numenta Anomaly Benchmark's scoring (NAB v1.1, nab/sweeper.py,
// nab/optimizer.py, nab/runner.py normalize()), written from its description:
//
//  * Each file has labelled anomaly windows (first and last row, inclusive).
//    The first probation rows (min(floor(0.15 n), 0.15 * 5000)) are not scored.
//  * A detection inside a window at row i scores
//      A_TP * sigma(-(right - i + 1) / width) / sigma(-1),
//    sigma(p) = 2 / (1 + exp(5 p)) - 1 (the scaled sigmoid; p > 3 gives -1), so
//    the earliest detection gets ~A_TP and one at the window's end ~0; only
//    a window's best (earliest) detection counts. A window with none costs
//    -A_FN.
//  * A detection outside every window scores A_FP * sigma(|i - right_prev| /
//    (width_prev - 1)) after a window (less negative just after it) and -A_FP
//    before the first window; every such row counts.
//  * A file's score is the sum; a corpus's the sum over files. Rows with an
//    anomaly score >= the threshold are detections; the optimiser sweeps every
//    distinct score over the whole corpus and keeps the best threshold (one
//    for all files).
//  * Normalised score = 100 (S - S_null) / (S_perfect - S_null), with S_null =
//    the score with no detections and S_perfect = A_TP x the number of windows.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace mmfuse::sensor {

struct NabCosts {
  double tp = 1.0, fp = 0.11, fn = 1.0, tn = 1.0;
};

// A labelled window as inclusive row indices.
struct NabWindow {
  size_t first = 0, last = 0;
};

// The scaled sigmoid of NAB (see above).
double nab_scaled_sigmoid(double relative_position);

// Rows at the start of a file of `rows` rows that are not scored.
size_t nab_probation_rows(size_t rows, double probation_percent = 0.15);

// One scorable row: its anomaly score, its weighted NAB contribution if it
// were a detection, and the corpus-wide window it lies in (-1 = none).
struct NabPoint {
  double anomaly_score = 0.0;
  double sweep_score = 0.0;
  long window = -1;
};

// The scorable rows of one file (probation rows left out). `window_base` makes
// window ids unique across a corpus: this file's windows get window_base,
// window_base + 1, ...; *windows_scored (if given) receives how many of them
// have a scorable row. Throws bad_input for windows out of order or range.
std::vector<NabPoint> nab_points(const std::vector<double>& anomaly_scores,
                                 const std::vector<NabWindow>& windows, const NabCosts& costs,
                                 long window_base, size_t* windows_scored = nullptr,
                                 double probation_percent = 0.15);

struct NabThresholdScore {
  double threshold = 0.0;
  double score = 0.0;
  size_t tp = 0, tn = 0, fp = 0, fn = 0;
};

// The score at every distinct threshold (detections = anomaly_score >=
// threshold), from "nothing detected" (threshold 1.1, NAB's start) down.
std::vector<NabThresholdScore> nab_scores_by_threshold(std::vector<NabPoint> points,
                                                       const NabCosts& costs);

// The best entry of nab_scores_by_threshold (the first of equal scores).
NabThresholdScore nab_optimize_threshold(const std::vector<NabPoint>& points,
                                         const NabCosts& costs);

// Score with a given threshold (detections = anomaly_score >= threshold).
NabThresholdScore nab_score_at(const std::vector<NabPoint>& points, const NabCosts& costs,
                               double threshold);

// 100 (score - null) / (perfect - null).
double nab_normalized(double score, double null_score, double perfect_score);

// Per-file rank normalisation (pandas rank(pct=True), ties averaged): a
// score's rank among the file's scores divided by their count.
std::vector<double> nab_rank_normalize(const std::vector<double>& scores);

}  // namespace mmfuse::sensor
