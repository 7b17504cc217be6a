// Sensors modality: pipeline fit on the baseline, window judging, stuck check.
#include "inspect/sensor_check.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/strings.h"
#include "mmfuse/error.h"
#include "sensor/modbus_source.h"
#include "sensor/time_axis.h"

namespace mmfuse::inspect {

namespace {

// Longest run of exactly repeated values in column c.
size_t longest_run(const sensor::Matrix& m, size_t c) {
  size_t best = m.rows > 0 ? 1 : 0, run = 1;
  for (size_t r = 1; r < m.rows; ++r) {
    run = m(r, c) == m(r - 1, c) ? run + 1 : 1;
    best = std::max(best, run);
  }
  return best;
}

bool same_name(const std::string& a, const std::string& b) {
  return ascii_lower(a) == ascii_lower(b);
}

}  // namespace

SensorCheck::SensorCheck(const SensorsConfig& config) : config_(config) {
  const sensor::SensorTable base = sensor::read_csv(config.baseline, sensor::CsvOptions{});
  MMFUSE_CHECK(base.rows() >= 50, bad_input,
               "sensor baseline '" + config.baseline.string() + "': needs at least 50 rows, has " +
                   std::to_string(base.rows()));
  channels_ = base.channels;
  sensor::PipelineOptions opt;
  opt.method = config.method;
  opt.smooth = config.smooth;
  opt.detector.smooth = config.smooth;
  opt.sample_interval_s = sensor::sampling_interval_seconds(base.times, base.rows());
  opt.slow_channel_autocorr = config.slow_channels;
  model_ = std::make_unique<sensor::SensorModel>(base.channels, base.values, opt);
  if (sensor::is_online_method(model_->options().method)) {  // "auto" resolved
    // The online detector starts each reading from what it learned on the
    // baseline rather than from nothing.
    warm_ = std::make_unique<sensor::StreamScorer>(model_->stream());
    for (size_t r = 0; r < base.rows(); ++r) warm_->push(base.values.row(r));
  }
  for (size_t c = 0; c < channels_.size(); ++c)
    stuck_limit_.push_back(config.flatline_rows == 0
                               ? 0
                               : std::max(config.flatline_rows, 2 * longest_run(base.values, c)));
}

SensorFinding SensorCheck::judge(const SensorWindow& window) const {
  std::vector<size_t> column(channels_.size());
  for (size_t c = 0; c < channels_.size(); ++c) {
    size_t k = 0;
    while (k < window.channels.size() && !same_name(window.channels[k], channels_[c])) ++k;
    MMFUSE_CHECK(
        k < window.channels.size(), bad_input,
        "sensors '" + window.source + "': no channel '" + channels_[c] + "' (the baseline has it)");
    column[c] = k;
  }
  MMFUSE_CHECK(window.values.rows > 0, bad_input, "sensors '" + window.source + "': no rows");
  const sensor::Matrix x = window.values.select_cols(column);
  SensorFinding f;
  f.rows = x.rows;
  f.threshold = model_->threshold();
  sensor::StreamScorer scorer = warm_ ? *warm_ : model_->stream();
  for (size_t r = 0; r < x.rows; ++r) {
    const sensor::RowResult rr = scorer.push(x.row(r));
    f.max_score = std::max(f.max_score, rr.score);
    if (rr.anomaly) ++f.anomalous_rows;
  }
  double ratio = f.anomalous_rows > 0
                     ? static_cast<double>(f.anomalous_rows) / config_.min_anomalous_rows
                     : std::min(0.999, f.threshold > 0 ? f.max_score / f.threshold : 0.0);
  for (size_t c = 0; c < channels_.size(); ++c) {
    if (stuck_limit_[c] == 0) continue;
    const size_t run = longest_run(x, c);
    const double r = static_cast<double>(run) / stuck_limit_[c];
    if (run >= stuck_limit_[c] && run > f.stuck_rows) {
      f.stuck_rows = run;
      f.stuck_channel = channels_[c];
    }
    ratio = std::max(ratio, r);
  }
  f.raw_score = ratio;
  f.anomaly = ratio >= 1.0;
  return f;
}

SensorWindow parse_sensor_window(const std::string& csv_text, const std::string& name) {
  sensor::SensorTable t = sensor::parse_csv(csv_text, name, sensor::CsvOptions{});
  return SensorWindow{name, t.channels, std::move(t.values)};
}

SensorWindow poll_sensor_window(const ModbusSourceConfig& config) {
  sensor::ModbusPoller poller(config.options);
  SensorWindow w;
  w.source = "modbus://" + config.options.host + ":" + std::to_string(config.options.port);
  for (const auto& r : config.options.registers) w.channels.push_back(r.name);
  w.values = sensor::Matrix(0, w.channels.size());
  const auto rows =
      static_cast<size_t>(std::max(1.0, std::round(config.seconds * config.options.rate_hz)));
  // A device that stays down must not hold the round: give up after twice the window.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(2.0 * config.seconds + 1.0);
  std::string last_event;
  poller.run(
      [&](const sensor::ModbusSample& s) {
        w.values.append_row(s.values.data());
        if (std::chrono::steady_clock::now() > deadline) poller.stop();
      },
      rows,
      [&](const std::string& event) {
        last_event = event;
        if (std::chrono::steady_clock::now() > deadline) poller.stop();
      });
  MMFUSE_CHECK(w.values.rows > 0, bad_input,
               w.source + ": no samples within " + std::to_string(2.0 * config.seconds + 1.0) +
                   " s (" + last_event + ")");
  return w;
}

}  // namespace mmfuse::inspect
