// mmfuse::SensorDetector and detect_csv (the public API) on top of the
// streaming sensor pipeline (detect/pipeline.h) and the CSV source: the
// numbers `mmfuse sensor detect` writes.
#include "mmfuse/sensor.h"

#include <optional>

#include "detect/pipeline.h"
#include "sensor/csv_source.h"
#include "sensor/matrix.h"
#include "sensor/time_axis.h"

namespace mmfuse {

namespace {

sensor::PipelineOptions pipeline_options(const SensorOptions& o) {
  MMFUSE_CHECK(o.folds >= 2 && o.folds <= 50, bad_input,
               "folds " + std::to_string(o.folds) + " is outside [2, 50]");
  MMFUSE_CHECK(o.trees >= 1, bad_input, "trees must be at least 1");
  MMFUSE_CHECK(o.sample_size >= 2, bad_input, "sample_size must be at least 2");
  MMFUSE_CHECK(!o.despike || o.despike_window >= 2, bad_input,
               "despike_window must be at least 2 rows");
  MMFUSE_CHECK(!o.despike || o.despike_sigmas > 0.0, bad_input, "despike_sigmas must be positive");
  MMFUSE_CHECK(o.moving_average >= 1, bad_input, "moving_average must be at least 1 row");
  MMFUSE_CHECK(o.slow_channel_autocorr >= 0.0 && o.slow_channel_autocorr <= 1.0, bad_input,
               "slow_channel_autocorr must be in [0, 1]");
  sensor::PipelineOptions p;
  p.method = o.method;
  p.smooth = o.smooth;
  p.folds = o.folds;
  p.margin = o.margin;
  p.detector.seed = o.seed;
  p.detector.trees = o.trees;
  p.detector.sample_size = o.sample_size;
  p.ignore_channels = o.ignore_channels;
  p.cleaning.despike = o.despike;
  p.cleaning.despike_window = o.despike_window;
  p.cleaning.despike_sigmas = o.despike_sigmas;
  p.cleaning.moving_average = o.moving_average;
  p.slow_channel_autocorr = o.slow_channel_autocorr;
  MMFUSE_CHECK(o.slow_channel_lag_s > 0.0 && o.sample_interval_s >= 0.0, bad_input,
               "slow_channel_lag_s must be positive and sample_interval_s not negative");
  p.slow_channel_lag_s = o.slow_channel_lag_s;
  p.sample_interval_s = o.sample_interval_s;
  MMFUSE_CHECK(o.online_threshold >= 0.0 && o.online_threshold <= 1.0, bad_input,
               "online_threshold must be in [0, 1]");
  p.online.threshold = o.online_threshold;
  sensor::check_pipeline_method(p.method);  // an unknown method fails before any work
  return p;
}

}  // namespace

struct SensorDetector::Impl {
  std::vector<std::string> channels;
  std::optional<sensor::SensorModel> model;
};

struct SensorScorer::Impl {
  std::shared_ptr<const SensorDetector::Impl> detector;  // keeps the model alive
  sensor::StreamScorer stream;
};

SensorScorer::SensorScorer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SensorScorer::SensorScorer(SensorScorer&&) noexcept = default;
SensorScorer& SensorScorer::operator=(SensorScorer&&) noexcept = default;
SensorScorer::~SensorScorer() = default;

SensorScore SensorScorer::push(const std::vector<double>& row) {
  MMFUSE_CHECK(impl_ != nullptr, bad_input, "push() on a moved-from SensorScorer");
  const size_t n = impl_->detector->channels.size();
  MMFUSE_CHECK(row.size() == n, bad_input,
               "a row to score has " + std::to_string(row.size()) + " values, expected " +
                   std::to_string(n) + " (one per channel)");
  const sensor::RowResult r = impl_->stream.push(row.data());
  return {r.score, r.anomaly};
}

SensorDetector::SensorDetector(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
SensorDetector::~SensorDetector() = default;

std::unique_ptr<SensorDetector> SensorDetector::fit(
    const std::vector<std::string>& channels, const std::vector<std::vector<double>>& train_rows,
    const SensorOptions& options) {
  const sensor::PipelineOptions p = pipeline_options(options);
  MMFUSE_CHECK(!channels.empty(), bad_input, "no channels given");
  sensor::Matrix train(0, channels.size());
  train.data.reserve(train_rows.size() * channels.size());
  for (size_t r = 0; r < train_rows.size(); ++r) {
    MMFUSE_CHECK(train_rows[r].size() == channels.size(), bad_input,
                 "training row " + std::to_string(r) + " has " +
                     std::to_string(train_rows[r].size()) + " values, expected " +
                     std::to_string(channels.size()) + " (one per channel)");
    train.append_row(train_rows[r].data());
  }
  auto impl = std::make_shared<Impl>();
  impl->channels = channels;
  impl->model.emplace(channels, train, p);
  return std::unique_ptr<SensorDetector>(new SensorDetector(std::move(impl)));
}

double SensorDetector::threshold() const {
  return impl_->model->threshold();
}
const std::vector<std::string>& SensorDetector::channels() const {
  return impl_->channels;
}
std::vector<std::string> SensorDetector::channels_used() const {
  return impl_->model->used_channels();
}
std::vector<std::string> SensorDetector::constant_channels() const {
  return impl_->model->constant_channels();
}
std::vector<std::string> SensorDetector::slow_channels() const {
  return impl_->model->slow_channels();
}

SensorScorer SensorDetector::stream() const {
  return SensorScorer(
      std::unique_ptr<SensorScorer::Impl>(new SensorScorer::Impl{impl_, impl_->model->stream()}));
}

SensorCsvResult detect_csv(const std::string& csv_path, const SensorOptions& options,
                           const SensorCsvOptions& csv) {
  sensor::PipelineOptions p = pipeline_options(options);
  sensor::CsvOptions co;
  co.delimiter = csv.delimiter;
  co.time_column = csv.time_column;
  co.reject_bad_rows = csv.reject_bad_rows;
  const sensor::SensorTable table = sensor::read_csv(csv_path, co);
  MMFUSE_CHECK(table.rows() > 0, bad_input, csv_path + ": no valid data rows");
  MMFUSE_CHECK(csv.train_rows >= 1, bad_input, "train_rows must be at least 1");
  MMFUSE_CHECK(csv.train_rows <= table.rows(), bad_input,
               csv_path + ": train_rows " + std::to_string(csv.train_rows) + " exceeds the " +
                   std::to_string(table.rows()) + " valid rows");
  if (p.sample_interval_s == 0.0)
    p.sample_interval_s = sensor::sampling_interval_seconds(table.times, csv.train_rows);
  const sensor::SensorModel model(table.channels, table.values.slice_rows(0, csv.train_rows), p);
  sensor::StreamScorer stream = model.stream();
  SensorCsvResult out;
  out.rows.reserve(table.rows());
  for (size_t r = 0; r < table.rows(); ++r) {
    const sensor::RowResult res = stream.push(table.values.row(r));
    out.anomalies += res.anomaly ? 1 : 0;
    out.rows.push_back({table.row_numbers[r], res.score, res.anomaly});
  }
  out.threshold = model.threshold();
  out.channels_used = model.used_channels();
  out.constant_channels = model.constant_channels();
  out.bad_rows_skipped = table.bad_rows.size();
  return out;
}

}  // namespace mmfuse
