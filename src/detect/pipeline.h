// The sensor anomaly pipeline: channel selection -> cleaning -> detector ->
// trailing-mean smoothing of scores -> threshold. fit() learns everything from
// the training rows only; stream() then scores rows one at a time, in order,
// exactly as a live source delivers them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "detect/detector.h"
#include "detect/online_detector.h"
#include "sensor/cleaning.h"

namespace mmfuse::sensor {

// Batch detectors (detector_names()) plus "online", the adaptive detector of
// detect/online_detector.h, which learns as it streams instead of from a fit.
const std::vector<std::string>& pipeline_method_names();
bool is_online_method(const std::string& method);
// "auto" (the default): the online detector for a univariate stream (one
// channel left after ignore_channels), the ensemble for several channels.
// Other names are returned as they are.
std::string resolve_pipeline_method(const std::string& method, size_t channels);
// Throws ErrorKind::bad_input for a name pipeline_method_names() lacks.
void check_pipeline_method(const std::string& method);

struct PipelineOptions {
  std::string method = "auto";
  OnlineOptions online;  // method "online" only
  DetectorOptions detector;  // detector.smooth / detector.folds: see below
  CleaningOptions cleaning;
  // Trailing-mean window over detector scores (rows); 1 = no smoothing.
  size_t smooth = 30;
  // Out-of-fold calibration blocks and the factor on the calibrated maximum.
  int folds = 4;
  double margin = 1.1;
  // Channels left out of the detector (names, case-insensitive).
  std::vector<std::string> ignore_channels;
  // > 0: also leave out slow channels, those whose autocorrelation at a lag of
  // slow_channel_lag_s seconds over the training rows is at least this
  // (slow_channels.h); 0 = off. Never leaves the detector without a channel:
  // if every channel is slow, all stay. Not applied to the online method,
  // which follows drift itself.
  double slow_channel_autocorr = 0.7;
  double slow_channel_lag_s = 1.0;
  // Seconds between rows (from the time column); 0 = unknown, and then
  // slow_channel_lag_s counts rows.
  double sample_interval_s = 0.0;
};

struct RowResult {
  double score = 0.0;    // smoothed detector score
  bool anomaly = false;  // score > threshold
};

class SensorModel;

// Streaming state (cleaning history and the smoothing window) for one stream.
class StreamScorer {
 public:
  explicit StreamScorer(const SensorModel& model);
  StreamScorer(const StreamScorer& other);
  StreamScorer(StreamScorer&&) noexcept = default;
  // Scores the next row of the stream (all input channels, in table order).
  // Throws ErrorKind::bad_input for a NaN or infinite value (the sources never
  // deliver one; this keeps other callers from feeding one to a detector).
  RowResult push(const double* row);

 private:
  const SensorModel& model_;
  Cleaner cleaner_;
  std::vector<double> window_;  // ring buffer of raw scores
  size_t count_ = 0;
  double sum_ = 0.0;
  std::vector<double> selected_;
  std::unique_ptr<OnlineDetector> online_;  // method "online": this stream's learned state
};

class SensorModel {
 public:
  // Fits on the training rows (rows x channels named `channels`). Throws
  // ErrorKind::bad_input for an unknown method, ignored names that match no
  // channel, or too few rows.
  SensorModel(const std::vector<std::string>& channels, const Matrix& train,
              const PipelineOptions& options);

  double threshold() const { return threshold_; }
  const std::vector<std::string>& used_channels() const { return used_names_; }
  // Channels dropped because they were constant over the training rows.
  const std::vector<std::string>& constant_channels() const { return constant_names_; }
  // Channels dropped by the slow-channel rule.
  const std::vector<std::string>& slow_channels() const { return slow_names_; }
  // Every channel was constant in training: the used channels are those
  // constants and a row is anomalous when any departs from its value.
  bool constant_only() const { return constant_only_; }
  // The lag (rows) the slow-channel rule used.
  size_t slow_channel_lag_rows() const { return slow_lag_rows_; }
  const PipelineOptions& options() const { return options_; }
  size_t input_channels() const { return input_channels_; }
  StreamScorer stream() const { return StreamScorer(*this); }

 private:
  friend class StreamScorer;
  PipelineOptions options_;
  size_t input_channels_ = 0;
  std::vector<size_t> used_;  // input column of each detector channel
  std::vector<std::string> used_names_, constant_names_, slow_names_;
  std::unique_ptr<Detector> detector_;  // null for "online" and constant_only
  double threshold_ = 0.0;
  bool constant_only_ = false;
  std::vector<double> constants_;  // constant_only: each used channel's value
  size_t slow_lag_rows_ = 1;
};

// Scores a whole table: fits on rows [0, train_rows) and streams every row
// from the first (a fresh stream: the online method learns the training rows
// as it scores them).
std::vector<RowResult> detect_rows(const std::vector<std::string>& channels, const Matrix& values,
                                   size_t train_rows, const PipelineOptions& options,
                                   double* threshold = nullptr);

}  // namespace mmfuse::sensor
