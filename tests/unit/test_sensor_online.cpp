// The online detector (detect/online_detector.h) and the pipeline's handling
// of flat lines and time-based settings.
#include <gtest/gtest.h>

#include <cmath>

#include "detect/online_detector.h"
#include "detect/pipeline.h"
#include "sensor/slow_channels.h"
#include "sensor/time_axis.h"

namespace mmfuse::sensor {
namespace {

// A noisy daily-like cycle with deterministic noise.
std::vector<double> cycle(size_t n, uint64_t seed = 7) {
  std::vector<double> x(n);
  uint64_t s = seed;
  for (size_t i = 0; i < n; ++i) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    const double noise = static_cast<double>(s % 1000) / 1000.0 - 0.5;
    x[i] = 10.0 + 3.0 * std::sin(2.0 * M_PI * static_cast<double>(i) / 96.0) + 0.3 * noise;
  }
  return x;
}

std::vector<double> run(const std::vector<double>& x, OnlineOptions o = {}) {
  OnlineDetector d(1, o);
  std::vector<double> out;
  for (double v : x) out.push_back(d.push(&v));
  return out;
}

TEST(OnlineDetector, ConstantSignalIsNeverFlagged) {
  const auto s = run(std::vector<double>(5000, 42.0));
  for (double v : s) EXPECT_EQ(v, 0.0);
}

TEST(OnlineDetector, InjectedSpikeAndLevelShiftAreFlaggedThenTheShiftIsLearned) {
  auto x = cycle(6000);
  x[3000] += 8.0;                                        // a spike
  for (size_t i = 4500; i < x.size(); ++i) x[i] += 9.0;  // a lasting level shift
  const auto s = run(x);
  const double t = OnlineOptions{}.threshold;
  auto flagged = [&](size_t a, size_t b) {
    size_t n = 0;
    for (size_t i = a; i < b; ++i) n += s[i] >= t ? 1 : 0;
    return n;
  };
  EXPECT_GE(flagged(3000, 3005), 1u);  // the spike, at once
  EXPECT_GE(flagged(4500, 4505), 1u);  // the shift, at once
  EXPECT_EQ(flagged(5500, 6000), 0u);  // learned: the new level is normal now
  EXPECT_LE(flagged(1000, 2990), 2u);  // normal cycling: (almost) silent
}

TEST(OnlineDetector, CopyContinuesIdentically) {
  const auto x = cycle(3000);
  OnlineDetector a(1, {});
  for (size_t i = 0; i < 2000; ++i) a.push(&x[i]);
  OnlineDetector b = a;
  for (size_t i = 2000; i < 3000; ++i) EXPECT_EQ(a.push(&x[i]), b.push(&x[i]));
}

TEST(OnlineDetector, MultivariateBreakOfAJointPatternIsFlagged) {
  const auto x = cycle(5000);
  OnlineDetector d(2, {});
  double at_break = 0.0;
  size_t false_flags = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    // Two channels that move together; from row 4000 the second one stops following.
    const double row[2] = {x[i], i < 4000 ? 20.0 - x[i] : 20.0 - x[(i + 48) % 96 + 1000]};
    const double s = d.push(row);
    if (i >= 4000 && i < 4100) at_break = std::max(at_break, s);
    if (i >= 2000 && i < 3900 && s >= OnlineOptions{}.threshold) ++false_flags;
  }
  EXPECT_GE(at_break, OnlineOptions{}.threshold);
  // Normal joint cycling: (almost) silent -- 4 flags in 1,900 rows at the
  // default threshold (0.35, a 10^-3.5 tail) when written, 2 at 0.5.
  EXPECT_LE(false_flags, 4u);
}

TEST(OnlineDetector, ValueBeyondTheRecentRangeScoresOneAndQuietRowsScoreZero) {
  std::vector<double> x = cycle(3000);
  x[2500] = 13.3 + 0.2 * 6.6;  // 20 % of the range (about 6.6) above the recent maximum
  const std::vector<double> s = run(x);
  const double t = OnlineOptions{}.threshold;
  EXPECT_EQ(s[2500], 1.0);  // spatial anomaly
  // Every score is an alarm (>= threshold) or exactly 0.
  for (double v : s) EXPECT_TRUE(v == 0.0 || v >= t) << v;
  // One alarm per event: the rows after the flag rest at 0.
  for (size_t i = 2501; i < 2500 + OnlineOptions{}.rest_rows; ++i) EXPECT_EQ(s[i], 0.0) << i;
}

TEST(SensorPipeline, AutoMethodIsOnlineForOneChannelEnsembleForSeveral) {
  EXPECT_EQ(resolve_pipeline_method("auto", 1), "online");
  EXPECT_EQ(resolve_pipeline_method("auto", 8), "ensemble");
  EXPECT_EQ(resolve_pipeline_method("t2", 1), "t2");
  EXPECT_EQ(PipelineOptions{}.method, "auto");
  const std::vector<double> c = cycle(600);
  Matrix one(600, 1), two(600, 2);
  for (size_t i = 0; i < 600; ++i) one(i, 0) = two(i, 0) = c[i], two(i, 1) = c[(i * 7) % 600];
  PipelineOptions p;
  EXPECT_EQ(SensorModel({"v"}, one, p).options().method, "online");
  EXPECT_EQ(SensorModel({"a", "b"}, two, p).options().method, "ensemble");
  p.ignore_channels = {"B"};  // one channel left: a univariate stream
  EXPECT_EQ(SensorModel({"a", "b"}, two, p).options().method, "online");
}

TEST(SensorPipeline, AFlatLineIsScoredNotRefused) {
  Matrix x(1000, 1, 7.5);
  PipelineOptions p;
  for (const std::string method : {"ensemble", "online"}) {
    p.method = method;
    const auto rows = detect_rows({"value"}, x, 400, p);
    for (const auto& r : rows) EXPECT_FALSE(r.anomaly) << method;
  }
  p.method = "ensemble";
  x(900, 0) = 8.5;  // then it moves (and stays there)
  for (size_t r = 900; r < 1000; ++r) x(r, 0) = 8.5;
  const SensorModel m({"value"}, x.slice_rows(0, 400), p);
  EXPECT_TRUE(m.constant_only());
  const auto rows = detect_rows({"value"}, x, 400, p);
  EXPECT_FALSE(rows[899].anomaly);
  EXPECT_TRUE(rows[999].anomaly);
}

TEST(SensorPipeline, SlowChannelLagIsATime) {
  // A 10 Hz channel that is smooth within a second (sensor filtering) but
  // uncorrelated from one second to the next, and a slow trend.
  Matrix x(4000, 2);
  uint64_t s = 99;
  double level = 0.0;
  for (size_t r = 0; r < x.rows; ++r) {
    if (r % 10 == 0) {
      s ^= s << 13, s ^= s >> 7, s ^= s << 17;
      level = static_cast<double>(s % 1000) / 1000.0;
    }
    x(r, 0) = level;
    x(r, 1) = 0.001 * static_cast<double>(r);
  }
  EXPECT_GT(lag_autocorrelation(x, 1)[0], 0.8);   // one row = 0.1 s: looks slow
  EXPECT_LT(lag_autocorrelation(x, 10)[0], 0.2);  // one second: it is not
  PipelineOptions p;
  p.method = "t2";
  p.sample_interval_s = 0.1;
  const SensorModel m({"vib", "temp"}, x, p);
  EXPECT_EQ(m.slow_channel_lag_rows(), 10u);
  EXPECT_EQ(m.slow_channels(), (std::vector<std::string>{"temp"}));
  p.sample_interval_s = 0.0;  // unknown interval: the lag counts rows
  EXPECT_EQ(SensorModel({"vib", "temp"}, x, p).slow_channels().size(),
            0u);  // both look slow: all stay
}

TEST(TimeAxis, ParsesIsoAndNumbersAndFindsTheInterval) {
  EXPECT_EQ(parse_time_seconds("1970-01-01 00:00:00").value(), 0.0);
  EXPECT_EQ(parse_time_seconds("2014-04-01 00:05:00").value(), 1396310700.0);
  EXPECT_EQ(parse_time_seconds("2014-04-01T00:05:00.500000Z").value(), 1396310700.5);
  EXPECT_EQ(parse_time_seconds("2014-04-01").value(), 1396310400.0);
  EXPECT_EQ(parse_time_seconds("1234.5").value(), 1234.5);
  EXPECT_FALSE(parse_time_seconds("yesterday").has_value());
  EXPECT_FALSE(parse_time_seconds("2014-13-01 00:00:00").has_value());
  EXPECT_EQ(sampling_interval_seconds({"2020-03-09 10:14:33", "2020-03-09 10:14:34",
                                       "2020-03-09 10:14:35", "2020-03-09 10:14:37"},
                                      100),
            1.0);
  EXPECT_EQ(sampling_interval_seconds({"a", "b"}, 100), 0.0);
  EXPECT_EQ(seconds_to_rows(1.0, 0.1), 10u);
  EXPECT_EQ(seconds_to_rows(1.0, 300.0), 1u);
  EXPECT_EQ(seconds_to_rows(3.0, 0.0), 3u);
}

}  // namespace
}  // namespace mmfuse::sensor
