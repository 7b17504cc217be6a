// Cleaning: 3-sigma despiking and the moving average, both causal.
#include <gtest/gtest.h>

#include "mmfuse/error.h"
#include "sensor/cleaning.h"
#include "tools/synthetic.h"

namespace mmfuse::sensor {
namespace {

Matrix column(const std::vector<double>& v) {
  Matrix m(v.size(), 1);
  for (size_t i = 0; i < v.size(); ++i) m(i, 0) = v[i];
  return m;
}

TEST(SensorCleaning, OffIsIdentity) {
  SyntheticOptions s;
  s.rows = 200;
  const Matrix x = synthetic_sensor_data(s);
  EXPECT_EQ(clean(x, {}).data, x.data);
}

TEST(SensorCleaning, DespikeReplacesASpikeWithTheWindowMean) {
  std::vector<double> v;
  for (int i = 0; i < 40; ++i) v.push_back(i % 2 ? 1.0 : -1.0);  // mean 0, sd 1
  v[35] = 50.0;
  CleaningOptions o;
  o.despike = true;
  o.despike_window = 10;
  size_t replaced = 0;
  const Matrix y = clean(column(v), o, &replaced);
  EXPECT_EQ(replaced, 1u);
  EXPECT_DOUBLE_EQ(y(35, 0), 0.0);  // previous 10 raw values: five 1s and five -1s
  EXPECT_DOUBLE_EQ(y(34, 0), v[34]);
  EXPECT_DOUBLE_EQ(y(36, 0), v[36]);
}

TEST(SensorCleaning, DespikeBoundaryIsStrictlyBeyondThreeSigma) {
  std::vector<double> v;
  for (int i = 0; i < 20; ++i) v.push_back(i % 2 ? 1.0 : -1.0);
  v.push_back(3.0);   // exactly 3 sigma: kept
  v.push_back(3.01);  // window now includes 3.0: sd grew, kept too
  CleaningOptions o;
  o.despike = true;
  o.despike_window = 20;
  const Matrix y = clean(column(v), o);
  EXPECT_DOUBLE_EQ(y(20, 0), 3.0);
}

TEST(SensorCleaning, LastingLevelChangeIsAcceptedAfterAFewRows) {
  std::vector<double> v(60, 0.0);
  for (size_t i = 0; i < 30; ++i) v[i] = (i % 3) * 0.1;
  for (size_t i = 30; i < 60; ++i) v[i] = 10.0 + (i % 3) * 0.1;
  CleaningOptions o;
  o.despike = true;
  o.despike_window = 30;
  const Matrix y = clean(column(v), o);
  size_t held = 0;
  for (size_t i = 30; i < 60; ++i) held += y(i, 0) != v[i];
  EXPECT_GE(held, 1u);
  EXPECT_LE(held, 5u);
  for (size_t i = 40; i < 60; ++i) EXPECT_EQ(y(i, 0), v[i]);
}

TEST(SensorCleaning, MovingAverageIsTrailing) {
  CleaningOptions o;
  o.moving_average = 3;
  const Matrix y = clean(column({3, 6, 9, 12, 0}), o);
  EXPECT_DOUBLE_EQ(y(0, 0), 3.0);
  EXPECT_DOUBLE_EQ(y(1, 0), 4.5);
  EXPECT_DOUBLE_EQ(y(2, 0), 6.0);
  EXPECT_DOUBLE_EQ(y(3, 0), 9.0);
  EXPECT_DOUBLE_EQ(y(4, 0), 7.0);
}

TEST(SensorCleaning, CausalStreamingEqualsBatch) {
  SyntheticOptions s;
  s.rows = 300;
  s.channels = 3;
  Matrix x = synthetic_sensor_data(s);
  x(100, 1) += 40.0;  // a spike
  CleaningOptions o;
  o.despike = true;
  o.moving_average = 5;
  const Matrix all = clean(x, o);
  // Cleaning a prefix gives the same rows: no value depends on the future.
  const Matrix prefix = clean(x.slice_rows(0, 150), o);
  for (size_t i = 0; i < prefix.data.size(); ++i) EXPECT_EQ(prefix.data[i], all.data[i]);
  Cleaner c(3, o);
  for (size_t r = 0; r < x.rows; ++r) {
    std::vector<double> row(x.row(r), x.row(r) + 3);
    c.push(row.data());
    for (size_t j = 0; j < 3; ++j) EXPECT_EQ(row[j], all(r, j));
  }
  EXPECT_LT(all(100, 1), x(100, 1) - 20.0);  // the spike was removed before averaging
}

TEST(SensorCleaning, RejectsBadSettings) {
  CleaningOptions o;
  o.despike = true;
  o.despike_window = 1;
  EXPECT_THROW(Cleaner(2, o), Error);
  o.despike_window = 10;
  o.despike_sigmas = 0.0;
  EXPECT_THROW(Cleaner(2, o), Error);
}

}  // namespace
}  // namespace mmfuse::sensor
