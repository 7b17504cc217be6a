#include "detect/pipeline.h"

#include <algorithm>
#include <cmath>

#include "detect/calibration.h"
#include "mmfuse/error.h"
#include "sensor/csv_source.h"
#include "sensor/slow_channels.h"
#include "sensor/time_axis.h"

namespace mmfuse::sensor {

const std::vector<std::string>& pipeline_method_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n = detector_names();
    n.push_back("online");
    return n;
  }();
  return names;
}

bool is_online_method(const std::string& method) {
  return method == "online";
}

std::string resolve_pipeline_method(const std::string& method, size_t channels) {
  if (method != "auto") return method;
  return channels == 1 ? "online" : "ensemble";
}

void check_pipeline_method(const std::string& method) {
  if (is_online_method(method) || method == "auto") return;
  DetectorOptions o;
  o.trees = 1;
  make_detector(method, o);  // throws bad_input, listing the batch names
}

SensorModel::SensorModel(const std::vector<std::string>& channels, const Matrix& train,
                         const PipelineOptions& options)
    : options_(options), input_channels_(channels.size()) {
  MMFUSE_CHECK(train.cols == channels.size(), bad_input, "training rows do not match channels");
  MMFUSE_CHECK(options.smooth >= 1, bad_input, "smoothing window must be at least 1 row");
  MMFUSE_CHECK(options.margin > 0.0, bad_input, "threshold margin must be positive");
  check_pipeline_method(options.method);
  {
    size_t kept = 0;  // channels left after --ignore-channels decide what "auto" means
    for (const auto& c : channels)
      kept += std::none_of(options.ignore_channels.begin(), options.ignore_channels.end(),
                           [&](const std::string& n) { return ascii_lower(n) == ascii_lower(c); });
    options_.method = resolve_pipeline_method(options.method, kept);
  }
  const bool online = is_online_method(options_.method);
  const size_t min_rows = online ? 2 : std::max<size_t>(20, 2 * options.smooth);
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
    // A channel that never moved in training has no scale to judge it by
    // (the online detector learns levels as they come, so it keeps them).
    if (constant && !online) {
      constant_names_.push_back(channels[c]);
      continue;
    }
    used_.push_back(c);
    used_names_.push_back(channels[c]);
  }
  MMFUSE_CHECK(!used_.empty() || !constant_names_.empty(), bad_input,
               "no channel left for the detector (all ignored)");
  if (used_.empty()) {
    // A signal that never moved in training is a normal machine state (a
    // flat line): it is scored, and a row is anomalous when it departs from
    // the training value.
    constant_only_ = true;
    for (size_t c = 0; c < channels.size(); ++c)
      if (std::find(constant_names_.begin(), constant_names_.end(), channels[c]) !=
          constant_names_.end()) {
        used_.push_back(c);
        used_names_.push_back(channels[c]);
        constants_.push_back(cleaned(0, c));
      }
    constant_names_.clear();
    threshold_ = 0.0;
    return;
  }
  slow_lag_rows_ = seconds_to_rows(options.slow_channel_lag_s, options.sample_interval_s);
  if (options.slow_channel_autocorr > 0.0 && !online) {
    const std::vector<double> ac = lag_autocorrelation(cleaned.select_cols(used_), slow_lag_rows_);
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
  if (online) {
    threshold_ = options.online.threshold;
    return;
  }
  const Matrix x = cleaned.select_cols(used_);
  DetectorOptions dopt = options.detector;
  dopt.smooth = options.smooth;
  dopt.folds = options.folds;
  detector_ = make_detector(options_.method, dopt);
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
      selected_(model.used_.size()) {
  if (is_online_method(model.options_.method) && !model.constant_only_)
    online_ = std::make_unique<OnlineDetector>(model.used_.size(), model.options_.online);
}

StreamScorer::StreamScorer(const StreamScorer& o)
    : model_(o.model_),
      cleaner_(o.cleaner_),
      window_(o.window_),
      count_(o.count_),
      sum_(o.sum_),
      selected_(o.selected_),
      online_(o.online_ ? std::make_unique<OnlineDetector>(*o.online_) : nullptr) {}

RowResult StreamScorer::push(const double* row) {
  std::vector<double> cleaned(row, row + model_.input_channels_);
  for (double v : cleaned)
    MMFUSE_CHECK(std::isfinite(v), bad_input, "a row to score contains a NaN or infinite value");
  // The online method sees raw values: a spike is what it looks for.
  if (!online_) cleaner_.push(cleaned.data());
  for (size_t j = 0; j < model_.used_.size(); ++j) selected_[j] = cleaned[model_.used_[j]];
  if (model_.constant_only_) {
    double dev = 0.0;
    for (size_t j = 0; j < selected_.size(); ++j)
      dev = std::max(dev, std::abs(selected_[j] - model_.constants_[j]));
    return {dev, dev > model_.threshold_};
  }
  if (online_) {
    const double p = online_->push(selected_.data());
    return {p, p > 0.0 && p >= model_.threshold_};  // 0 = nothing, whatever the threshold
  }
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
