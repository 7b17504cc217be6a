#include "detect/pipeline.h"

#include <algorithm>
#include <cmath>

#include "detect/calibration.h"
#include "mmfuse/error.h"
#include "sensor/csv_source.h"
#include "sensor/slow_channels.h"

namespace mmfuse::sensor {

SensorModel::SensorModel(const std::vector<std::string>& channels, const Matrix& train,
                         const PipelineOptions& options)
    : options_(options), input_channels_(channels.size()) {
  MMFUSE_CHECK(train.cols == channels.size(), bad_input, "training rows do not match channels");
  MMFUSE_CHECK(options.smooth >= 1, bad_input, "smoothing window must be at least 1 row");
  MMFUSE_CHECK(options.margin > 0.0, bad_input, "threshold margin must be positive");
  const size_t min_rows = std::max<size_t>(20, 2 * options.smooth);
  MMFUSE_CHECK(train.rows >= min_rows, bad_input,
               "too few training rows: " + std::to_string(train.rows) + " (need at least " +
                   std::to_string(min_rows) + " with a smoothing window of " +
                   std::to_string(options.smooth) + ")");
  // Sources drop non-finite values; this guards callers that build rows themselves.
  for (double v : train.data)
    MMFUSE_CHECK(std::isfinite(v), bad_input, "training rows contain a NaN or infinite value");
  for (const auto& name : options.ignore_channels) {
    const bool known = std::any_of(channels.begin(), channels.end(), [&](const std::string& c) {
      return ascii_lower(c) == ascii_lower(name);
    });
    MMFUSE_CHECK(known, bad_input, "ignored channel '" + name + "' is not a column of the input");
  }
  // Cleaning runs on all input channels, as the stream will see them.
  const Matrix cleaned = clean(train, options.cleaning);
  for (size_t c = 0; c < channels.size(); ++c) {
    const bool ignored = std::any_of(
        options.ignore_channels.begin(), options.ignore_channels.end(),
        [&](const std::string& n) { return ascii_lower(n) == ascii_lower(channels[c]); });
    if (ignored) continue;
    bool constant = true;
    for (size_t r = 1; r < cleaned.rows && constant; ++r) constant = cleaned(r, c) == cleaned(0, c);
    // A channel that never moved in training has no scale to judge it by.
    if (constant) {
      constant_names_.push_back(channels[c]);
      continue;
    }
    used_.push_back(c);
    used_names_.push_back(channels[c]);
  }
  MMFUSE_CHECK(!used_.empty(), bad_input,
               "no channel left for the detector (all ignored or constant in training)");
  if (options.slow_channel_autocorr > 0.0) {
    const std::vector<double> ac = lag1_autocorrelation(cleaned.select_cols(used_));
    std::vector<size_t> fast;
    std::vector<std::string> fast_names, slow_names;
    for (size_t j = 0; j < used_.size(); ++j) {
      if (ac[j] >= options.slow_channel_autocorr) {
        slow_names.push_back(used_names_[j]);
      } else {
        fast.push_back(used_[j]);
        fast_names.push_back(used_names_[j]);
      }
    }
    if (!fast.empty()) {
      used_ = std::move(fast);
      used_names_ = std::move(fast_names);
      slow_names_ = std::move(slow_names);
    }
  }
  const Matrix x = cleaned.select_cols(used_);
  DetectorOptions dopt = options.detector;
  dopt.smooth = options.smooth;
  dopt.folds = options.folds;
  detector_ = make_detector(options.method, dopt);
  if (auto fixed = detector_->fixed_threshold()) {
    threshold_ = *fixed * options.margin;
  } else {
    threshold_ = calibrate_threshold(*detector_, x, options.smooth, options.folds, options.margin);
  }
  detector_->fit(x);
}

StreamScorer::StreamScorer(const SensorModel& model)
    : model_(model),
      cleaner_(model.input_channels_, model.options_.cleaning),
      window_(model.options_.smooth, 0.0),
      selected_(model.used_.size()) {}

RowResult StreamScorer::push(const double* row) {
  std::vector<double> cleaned(row, row + model_.input_channels_);
  for (double v : cleaned)
    MMFUSE_CHECK(std::isfinite(v), bad_input, "a row to score contains a NaN or infinite value");
  cleaner_.push(cleaned.data());
  for (size_t j = 0; j < model_.used_.size(); ++j) selected_[j] = cleaned[model_.used_[j]];
  const double raw = model_.detector_->score(selected_.data());
  const size_t w = window_.size();
  double& slot = window_[count_ % w];
  if (count_ >= w) sum_ -= slot;
  slot = raw;
  sum_ += raw;
  ++count_;
  // Re-add the window now and then so rounding cannot accumulate in sum_.
  if (count_ % 4096 == 0) {
    sum_ = 0.0;
    for (double v : window_) sum_ += v;
  }
  RowResult out;
  out.score = sum_ / static_cast<double>(std::min(count_, w));
  out.anomaly = out.score > model_.threshold_;
  return out;
}

std::vector<RowResult> detect_rows(const std::vector<std::string>& channels, const Matrix& values,
                                   size_t train_rows, const PipelineOptions& options,
                                   double* threshold) {
  MMFUSE_CHECK(train_rows <= values.rows, bad_input,
               "train_rows " + std::to_string(train_rows) + " exceeds the " +
                   std::to_string(values.rows) + " valid rows of the input");
  const SensorModel model(channels, values.slice_rows(0, train_rows), options);
  if (threshold != nullptr) *threshold = model.threshold();
  StreamScorer stream = model.stream();
  std::vector<RowResult> out;
  out.reserve(values.rows);
  for (size_t r = 0; r < values.rows; ++r) out.push_back(stream.push(values.row(r)));
  return out;
}

}  // namespace mmfuse::sensor
