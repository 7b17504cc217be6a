// mmfuse public API: sensor anomaly detection (the inspection robot's
// sensor check). Fit on rows known to be normal, then score rows one at a
// time, in order, as a live source delivers them: channel selection ->
// 3-sigma despiking -> detector (Isolation Forest, Hotelling T², PCA T²+Q,
// MSET or their ensemble) -> trailing mean of scores -> threshold calibrated
// out-of-fold on the training rows. Defaults are those of
// `mmfuse sensor detect`, and detect_csv() gives the numbers it writes.
//
//   auto det = mmfuse::SensorDetector::fit({"current", "pressure"}, normal_rows);
//   mmfuse::SensorScorer s = det->stream();
//   for (const auto& row : live_rows)
//     if (s.push(row).anomaly) alarm();
//
// Thread-safety: a fitted SensorDetector is read-only: any number of threads
// may call its const members and each may run its own SensorScorer at once;
// results do not depend on who else is computing. One SensorScorer holds one
// stream's state: push() to it from one thread at a time. Fitting and scoring
// run on the calling thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mmfuse/error.h"
#include "mmfuse/export.h"

namespace mmfuse {

struct SensorOptions {
  // Detector: "auto", "iforest", "t2", "pca", "mset", "ensemble" or "online"
  // (learns as it streams, follows drift; score = anomaly likelihood score in
  // [0, 1]). "auto" = online for a one-channel stream, ensemble otherwise.
  std::string method = "auto";  // online for one channel, ensemble for several
  size_t smooth = 30;        // trailing-mean window over scores, rows (1 = off)
  int folds = 4;             // out-of-fold calibration blocks (2..50)
  double margin = 1.1;       // threshold = margin x the calibrated maximum score
  uint64_t seed = 0;         // every random choice (Isolation Forest) derives from this
  int trees = 100;           // Isolation Forest trees
  size_t sample_size = 256;  // Isolation Forest sub-sample size (psi)
  // Channels left out of the detector (names, case-insensitive; each must exist).
  std::vector<std::string> ignore_channels;
  // Input cleaning: replace values beyond despike_sigmas standard deviations
  // of the trailing despike_window raw values; then a trailing moving average
  // of moving_average rows (1 = off).
  bool despike = true;
  size_t despike_window = 30;
  double despike_sigmas = 3.0;
  size_t moving_average = 1;
  // > 0: also leave out channels whose autocorrelation at a lag of
  // slow_channel_lag_s seconds over the training rows is at least this (slow
  // drifts the training rows show only a sliver of); 0 = off.
  double slow_channel_autocorr = 0.7;
  double slow_channel_lag_s = 1.0;
  // Seconds between rows; 0 = unknown (the lag then counts rows). detect_csv
  // takes it from the time column.
  double sample_interval_s = 0.0;
  // online method: flag when the score is at least this.
  double online_threshold = 0.35;
};

struct SensorScore {
  double score = 0.0;    // smoothed detector score (larger = more anomalous)
  bool anomaly = false;  // score > threshold()
};

class SensorDetector;

// One stream's state (cleaning history, smoothing window). Keeps its detector
// alive. Movable, not copyable.
class MMFUSE_API SensorScorer {
 public:
  SensorScorer(SensorScorer&&) noexcept;
  SensorScorer& operator=(SensorScorer&&) noexcept;
  ~SensorScorer();

  // Scores the next row: one value per channel given to fit(), in that order.
  // Throws bad_input for a row of the wrong size or a NaN / infinite value.
  SensorScore push(const std::vector<double>& row);

 private:
  friend class SensorDetector;
  struct Impl;
  explicit SensorScorer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class MMFUSE_API SensorDetector {
 public:
  ~SensorDetector();

  // Fits on `train_rows` (each one value per channel named in `channels`, all
  // finite), assumed normal. Throws bad_input for an unknown method, bad
  // option values, rows of the wrong size or with NaN / infinite values,
  // ignore_channels naming no channel, or too few rows for the method.
  static std::unique_ptr<SensorDetector> fit(const std::vector<std::string>& channels,
                                             const std::vector<std::vector<double>>& train_rows,
                                             const SensorOptions& options = {});

  double threshold() const;  // a row is an anomaly when its score exceeds this
  const std::vector<std::string>& channels() const;  // the input channels, as given
  // The channels the detector uses: all but the ignored, constant and slow ones.
  std::vector<std::string> channels_used() const;
  // Left out because they were constant over the training rows.
  std::vector<std::string> constant_channels() const;
  // Left out by the slow-channel rule (slow_channel_autocorr).
  std::vector<std::string> slow_channels() const;

  // A new stream, starting with empty history.
  SensorScorer stream() const;

 private:
  friend class SensorScorer;
  struct Impl;
  explicit SensorDetector(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

// How detect_csv() reads the file and which rows it fits on.
struct SensorCsvOptions {
  size_t train_rows = 400;  // the first valid rows, assumed normal, fitted on
  // Field delimiter: ',', ';' or '\t'; 0 = detect from the header.
  char delimiter = 0;
  // Time column (not a channel): "" = the first of datetime / timestamp /
  // time / date present (case-insensitive); "-" = the file has none.
  std::string time_column;
  // Columns anomaly / changepoint / label are labels, never channels.
  // true: a bad row (wrong field count, non-numeric value) fails the call;
  // false: it is skipped and counted.
  bool reject_bad_rows = false;
};

struct SensorCsvRow {
  size_t row = 0;  // 0-based data-row number in the file (skipped bad rows leave gaps)
  double score = 0.0;
  bool anomaly = false;
};

struct SensorCsvResult {
  std::vector<SensorCsvRow> rows;  // every valid row, in file order
  double threshold = 0.0;
  std::vector<std::string> channels_used;
  std::vector<std::string> constant_channels;
  size_t anomalies = 0;         // rows with anomaly set
  size_t bad_rows_skipped = 0;  // rows left out as malformed
};

// `mmfuse sensor detect` as a call: reads a sensor CSV, fits on its first
// train_rows valid rows and streams every valid row through the fitted
// detector. Throws not_found for a missing file, bad_input for a malformed
// file, no valid rows, train_rows beyond them, or bad options (as fit()).
MMFUSE_API SensorCsvResult detect_csv(const std::string& csv_path,
                                      const SensorOptions& options = {},
                                      const SensorCsvOptions& csv = {});

}  // namespace mmfuse
