// The pipeline: channel selection, cleaning, smoothing, threshold, and the
// streaming scorer agreeing with whole-file detection.
#include <gtest/gtest.h>

#include <cmath>

#include "detect/pipeline.h"
#include "mmfuse/error.h"
#include "sensor/csv_source.h"
#include "sensor/slow_channels.h"
#include "test_sensor_util.h"
#include "tools/synthetic.h"

namespace mmfuse::sensor {
namespace {

std::vector<std::string> names(size_t d) {
  std::vector<std::string> n;
  for (size_t c = 0; c < d; ++c) n.push_back(std::string("c").append(std::to_string(c)));
  return n;
}

Matrix faulty(size_t rows, size_t begin, size_t end, uint64_t seed = 1) {
  SyntheticOptions s;
  s.rows = rows;
  s.channels = 5;
  s.seed = seed;
  s.fault_begin = begin;
  s.fault_end = end;
  return synthetic_sensor_data(s);
}

TEST(SensorPipeline, DetectsAnInjectedFaultWithFewFalseAlarms) {
  const Matrix x = faulty(1200, 800, 1000);
  for (const std::string method : {"iforest", "t2", "pca", "mset", "ensemble"}) {
    PipelineOptions p;
    p.method = method;
    p.cleaning.despike = true;
    const auto rows = detect_rows(names(5), x, 400, p);
    size_t tp = 0, fp = 0;
    for (size_t r = 400; r < 1200; ++r) {
      const bool fault = r >= 800 && r < 1000;
      const bool lag = r >= 1000 && r < 1030;  // the 30-row smoothing window trails the fault
      tp += fault && rows[r].anomaly;
      fp += !fault && !lag && rows[r].anomaly;
    }
    EXPECT_GT(tp, 150u) << method;  // of 200 fault rows
    EXPECT_LT(fp, 60u) << method;   // of 570 normal rows
  }
}

TEST(SensorPipeline, StreamingEqualsWholeFileAndIsRepeatable) {
  const Matrix x = faulty(600, 450, 520);
  PipelineOptions p;
  p.method = "pca";
  p.cleaning.despike = true;
  p.cleaning.moving_average = 3;
  double threshold = 0;
  const auto batch = detect_rows(names(5), x, 300, p, &threshold);
  const SensorModel model(names(5), x.slice_rows(0, 300), p);
  EXPECT_EQ(model.threshold(), threshold);
  StreamScorer a = model.stream(), b = model.stream();
  for (size_t r = 0; r < x.rows; ++r) {
    const RowResult ra = a.push(x.row(r)), rb = b.push(x.row(r));
    EXPECT_EQ(ra.score, batch[r].score);
    EXPECT_EQ(ra.anomaly, batch[r].anomaly);
    EXPECT_EQ(rb.score, ra.score);
    EXPECT_EQ(ra.anomaly, ra.score > threshold);
  }
}

TEST(SensorPipeline, SmoothingIsATrailingMeanOfDetectorScores) {
  const Matrix x = faulty(300, 0, 0);
  PipelineOptions raw, smooth;
  raw.method = smooth.method = "t2";
  raw.smooth = 1;
  smooth.smooth = 5;
  const auto r1 = detect_rows(names(5), x, 200, raw);
  const auto r5 = detect_rows(names(5), x, 200, smooth);
  for (size_t i = 0; i < x.rows; ++i) {
    double s = 0;
    const size_t lo = i >= 4 ? i - 4 : 0;
    for (size_t j = lo; j <= i; ++j) s += r1[j].score;
    EXPECT_NEAR(r5[i].score, s / static_cast<double>(i - lo + 1), 1e-9 * (1 + s));
  }
}

TEST(SensorPipeline, IgnoredAndConstantChannelsAreLeftOut) {
  Matrix x = faulty(500, 0, 0);
  for (size_t r = 0; r < x.rows; ++r) x(r, 4) = 7.0;  // stuck sensor
  PipelineOptions p;
  p.method = "t2";
  p.ignore_channels = {"C1"};  // case-insensitive
  p.slow_channel_autocorr = 0.0;  // this test is about the other two rules
  const SensorModel m(names(5), x.slice_rows(0, 400), p);
  EXPECT_EQ(m.used_channels(), (std::vector<std::string>{"c0", "c2", "c3"}));
  EXPECT_EQ(m.constant_channels(), (std::vector<std::string>{"c4"}));
  // A change in an ignored channel does not move the score.
  StreamScorer s1 = m.stream(), s2 = m.stream();
  std::vector<double> row(x.row(450), x.row(450) + 5), moved = row;
  moved[1] += 100.0;
  EXPECT_EQ(s1.push(row.data()).score, s2.push(moved.data()).score);
}

TEST(SensorPipeline, LagAutocorrelationSeparatesNoiseFromTrends) {
  Matrix x(400, 3);
  uint64_t state = 12345;
  auto noise = [&] {  // xorshift, uniform in [-0.5, 0.5)
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return static_cast<double>(state % 1000000) / 1e6 - 0.5;
  };
  for (size_t r = 0; r < x.rows; ++r) {
    x(r, 0) = noise();
    x(r, 1) = 0.05 * static_cast<double>(r) + noise();  // warming up
    x(r, 2) = 3.0;
  }
  const std::vector<double> ac = lag_autocorrelation(x, 1);
  EXPECT_LT(std::fabs(ac[0]), 0.15);
  EXPECT_GT(ac[1], 0.95);
  EXPECT_EQ(ac[2], 0.0);
  // Against the definition computed directly for the trend column.
  double mean = 0.0, num = 0.0, den = 0.0;
  for (size_t r = 0; r < x.rows; ++r) mean += x(r, 1) / 400.0;
  for (size_t r = 0; r < x.rows; ++r) {
    den += (x(r, 1) - mean) * (x(r, 1) - mean);
    if (r > 0) num += (x(r, 1) - mean) * (x(r - 1, 1) - mean);
  }
  EXPECT_NEAR(ac[1], num / den, 1e-12);
}

TEST(SensorPipeline, SlowChannelsAreLeftOutUnlessNothingElseRemains) {
  Matrix x = faulty(500, 0, 0);
  for (size_t r = 0; r < x.rows; ++r) x(r, 2) = 20.0 + 0.01 * static_cast<double>(r);
  PipelineOptions p;
  p.method = "t2";
  p.slow_channel_autocorr = 0.8;
  const SensorModel m(names(5), x.slice_rows(0, 400), p);
  EXPECT_EQ(m.slow_channels(), (std::vector<std::string>{"c2"}));
  EXPECT_EQ(m.used_channels(), (std::vector<std::string>{"c0", "c1", "c3", "c4"}));
  // 0 turns it off (it is on by default).
  EXPECT_EQ(PipelineOptions{}.slow_channel_autocorr, 0.7);
  p.slow_channel_autocorr = 0.0;
  EXPECT_EQ(SensorModel(names(5), x.slice_rows(0, 400), p).used_channels().size(), 5u);
  // Only slow channels: all stay, so the detector still has something to judge.
  Matrix only_slow(400, 1);
  for (size_t r = 0; r < 400; ++r) only_slow(r, 0) = static_cast<double>(r);
  p.slow_channel_autocorr = 0.8;
  const SensorModel single({"temp"}, only_slow, p);
  EXPECT_EQ(single.used_channels(), (std::vector<std::string>{"temp"}));
  EXPECT_TRUE(single.slow_channels().empty());
}

TEST(SensorPipeline, BadConfigurationIsBadInput) {
  const Matrix x = faulty(500, 0, 0);
  PipelineOptions p;
  p.ignore_channels = {"nope"};
  EXPECT_THROW(SensorModel(names(5), x, p), Error);
  p = {};
  p.method = "nope";
  EXPECT_THROW(SensorModel(names(5), x, p), Error);
  p = {};
  EXPECT_THROW(SensorModel(names(5), x.slice_rows(0, 40), p), Error);  // < 2 x smooth rows
  p.ignore_channels = {"c0", "c1", "c2", "c3", "c4"};
  EXPECT_THROW(SensorModel(names(5), x, p), Error);
  EXPECT_THROW(detect_rows(names(5), x, 501, {}), Error);
}

TEST(SensorPipeline, NanNeverReachesADetector) {
  Matrix x = faulty(500, 0, 0);
  PipelineOptions p;
  p.method = "t2";
  const SensorModel m(names(5), x.slice_rows(0, 400), p);
  StreamScorer s = m.stream();
  std::vector<double> row(x.row(450), x.row(450) + 5);
  row[2] = std::nan("");
  EXPECT_THROW(s.push(row.data()), Error);
  x(10, 3) = INFINITY;
  EXPECT_THROW(SensorModel(names(5), x.slice_rows(0, 400), p), Error);
}

TEST(SensorPipeline, FixturePumpFaultIsFound) {
  const SensorTable t = read_csv(test::sensor_fixture("sensor/pump_semicolon.csv"), {});
  ASSERT_EQ(t.rows(), 600u);
  PipelineOptions p;
  p.cleaning.despike = true;
  const auto rows = detect_rows(t.channels, t.values, 400, p);
  size_t tp = 0, fp = 0;
  for (size_t r = 400; r < 600; ++r) {
    const bool truth = t.labels(r, 0) == 1.0;
    tp += truth && rows[r].anomaly;
    fp += !truth && rows[r].anomaly;
  }
  EXPECT_GT(tp, 60u);  // of 80
  EXPECT_LT(fp, 40u);  // of 120
}

}  // namespace
}  // namespace mmfuse::sensor
