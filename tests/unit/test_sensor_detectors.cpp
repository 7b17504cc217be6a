// The multivariate detectors (T2, PCA T2+Q, MSET, ensemble) and the linear
// algebra under them, checked against direct computations.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "detect/calibration.h"
#include "detect/detector.h"
#include "detect/ensemble.h"
#include "detect/hotelling_t2.h"
#include "detect/mset.h"
#include "detect/pca_t2q.h"
#include "mmfuse/error.h"
#include "sensor/linalg.h"
#include "tools/synthetic.h"

namespace mmfuse::sensor {
namespace {

Matrix normal_rows(size_t n, size_t d, uint64_t seed) {
  SyntheticOptions s;
  s.rows = n;
  s.channels = d;
  s.seed = seed;
  return synthetic_sensor_data(s);
}

// 5 channels: the Jacobi path; 100: LAPACK's dsyevd (above 64).
TEST(SensorLinalg, EigenReconstructsTheMatrix) {
  for (size_t n : {5u, 100u}) {
    const Matrix x = normal_rows(300, n, 1);
    Standardizer sc;
    sc.fit(x);
    const Matrix c = covariance(sc.apply(x));
    const SymmetricEigen e = symmetric_eigen(c);
    ASSERT_EQ(e.values.size(), n);
    for (size_t k = 1; k < n; ++k) EXPECT_GE(e.values[k - 1], e.values[k]);
    for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j < n; ++j) {
        double v = 0.0, dot = 0.0;
        for (size_t k = 0; k < n; ++k) {
          v += e.vectors(i, k) * e.values[k] * e.vectors(j, k);
          dot += e.vectors(k, i) * e.vectors(k, j);
        }
        EXPECT_NEAR(v, c(i, j), 1e-10) << n;
        EXPECT_NEAR(dot, i == j ? 1.0 : 0.0, 1e-10) << n;  // orthonormal
      }
  }
}

TEST(SensorLinalg, LuSolvesAndPinvInverts) {
  Matrix a(3, 3);
  const double v[9] = {4, 1, 2, 1, 3, 0, 2, 0, 5};
  std::copy(v, v + 9, a.data.begin());
  double b[3] = {1, 2, 3};
  LuSolver(a).solve(b);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_NEAR(a(i, 0) * b[0] + a(i, 1) * b[1] + a(i, 2) * b[2], i + 1.0, 1e-12);
  const Matrix inv = symmetric_pinv(a);
  for (size_t i = 0; i < 3; ++i)
    for (size_t j = 0; j < 3; ++j) {
      double s = 0;
      for (size_t k = 0; k < 3; ++k) s += a(i, k) * inv(k, j);
      EXPECT_NEAR(s, i == j ? 1.0 : 0.0, 1e-10);
    }
  EXPECT_THROW(LuSolver(Matrix(2, 2, 1.0)), Error);  // singular
}

TEST(HotellingT2, EqualsMahalanobisDistanceOfZScores) {
  const Matrix x = normal_rows(400, 4, 2);
  DetectorOptions o;
  HotellingT2 t2(o);
  t2.fit(x);
  Standardizer sc;
  sc.fit(x);
  const Matrix inv = symmetric_pinv(covariance(sc.apply(x)));
  const double row[4] = {10, 25, 26, 41};
  double z[4];
  sc.apply(row, z);
  double expect = 0;
  for (size_t i = 0; i < 4; ++i)
    for (size_t j = 0; j < 4; ++j) expect += z[i] * inv(i, j) * z[j];
  EXPECT_NEAR(t2.score(row), expect, 1e-9 * expect);
  // The mean training T2 is (n-1)/n * d for the sample covariance.
  double mean = 0;
  for (size_t r = 0; r < x.rows; ++r) mean += t2.score(x.row(r));
  EXPECT_NEAR(mean / x.rows, 4.0 * 399 / 400, 1e-9);
}

TEST(PcaT2Q, KeepsComponentsByExplainedVarianceAndSplitsT2FromQ) {
  // Three channels driven by one factor plus small noise: one component explains > 85 %.
  std::mt19937_64 rng(3);
  std::normal_distribution<double> g(0, 1);
  Matrix x(500, 3);
  for (size_t r = 0; r < 500; ++r) {
    const double f = g(rng);
    for (size_t c = 0; c < 3; ++c) x(r, c) = f * (c + 1) + 0.05 * g(rng);
  }
  DetectorOptions o;
  PcaT2Q pca(o);
  pca.fit(x);
  EXPECT_EQ(pca.components(), 1u);
  Standardizer sc;
  sc.fit(x);
  // A row along the factor far out: big T2, tiny Q. Off the factor: big Q.
  double along[3], off[3];
  for (size_t c = 0; c < 3; ++c) {
    along[c] = sc.mean[c] + 4 * sc.sd[c];
    off[c] = sc.mean[c] + (c == 0 ? 1.0 : -1.0) * sc.sd[c];
  }
  double t2a, qa, t2o, qo;
  pca.statistics(along, &t2a, &qa);
  pca.statistics(off, &t2o, &qo);
  EXPECT_GT(t2a, 10.0);
  EXPECT_LT(qa, 0.05);
  EXPECT_GT(qo, 1.0);
  o.explained_variance = 1.0;  // keep everything: Q is unused, score = T2 / mean
  PcaT2Q all(o);
  all.fit(x);
  EXPECT_EQ(all.components(), 3u);
}

TEST(Mset, ReconstructsMemoryAndFlagsNovelStates) {
  const Matrix x = normal_rows(400, 5, 4);
  DetectorOptions o;
  Mset m(o);
  m.fit(x);
  EXPECT_GT(m.memory_size(), 300u);
  EXPECT_LE(m.memory_size(), 400u);
  // Memory states are reproduced almost exactly (only the ridge separates them).
  double train_max = 0;
  for (size_t r = 0; r < x.rows; r += 7) train_max = std::max(train_max, m.score(x.row(r)));
  std::vector<double> novel(x.row(10), x.row(10) + 5);
  novel[0] += 8.0;  // channel 0 alone far off: not a state the memory knows
  EXPECT_GT(m.score(novel.data()), 100 * std::max(train_max, 1e-6));
}

TEST(SensorDetectors, EveryMethodRanksAFaultAboveNormalRows) {
  SyntheticOptions s;
  s.rows = 700;
  s.channels = 6;
  s.seed = 5;
  s.fault_begin = 500;
  s.fault_end = 600;
  const Matrix x = synthetic_sensor_data(s);
  const Matrix train = x.slice_rows(0, 400);
  for (const auto& name : detector_names()) {
    DetectorOptions o;
    auto d = make_detector(name, o);
    d->fit(train);
    std::vector<double> normal, fault;
    for (size_t r = 400; r < 700; ++r)
      (r >= 500 && r < 600 ? fault : normal).push_back(d->score(x.row(r)));
    std::sort(normal.begin(), normal.end());
    std::sort(fault.begin(), fault.end());
    // The fault's median beats the 95th percentile of normal test rows.
    EXPECT_GT(fault[fault.size() / 2], normal[normal.size() * 95 / 100]) << name;
  }
}

TEST(SensorDetectors, FactoryAndDeterminism) {
  DetectorOptions o;
  EXPECT_THROW(make_detector("nope", o), Error);
  try {
    make_detector("nope", o);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("iforest, t2, pca, mset, ensemble"), std::string::npos);
  }
  const Matrix x = normal_rows(400, 4, 6);
  for (const auto& name : detector_names()) {
    auto a = make_detector(name, o), b = make_detector(name, o);
    a->fit(x);
    b->fit(x);
    for (size_t r = 0; r < x.rows; r += 37)
      EXPECT_EQ(a->score(x.row(r)), b->score(x.row(r))) << name;
    EXPECT_EQ(a->name(), name);
    EXPECT_EQ(a->clone_unfitted()->name(), name);
  }
  EXPECT_EQ(make_detector("ensemble", o)->fixed_threshold().value_or(0), 1.0);
  EXPECT_FALSE(make_detector("t2", o)->fixed_threshold().has_value());
}

TEST(SensorDetectors, TooFewRowsIsBadInput) {
  DetectorOptions o;
  for (const auto& name : {"t2", "pca"}) {
    auto d = make_detector(name, o);
    EXPECT_THROW(d->fit(normal_rows(4, 4, 1)), Error) << name;
  }
}

TEST(SensorCalibration, TrailingMeanAndOutOfFoldThreshold) {
  EXPECT_EQ(trailing_mean({1, 2, 3, 4}, 2), (std::vector<double>{1, 1.5, 2.5, 3.5}));
  EXPECT_EQ(trailing_mean({1, 2, 3}, 1), (std::vector<double>{1, 2, 3}));
  const Matrix x = normal_rows(400, 4, 7);
  DetectorOptions o;
  const auto proto = make_detector("t2", o);
  const std::vector<double> oof = out_of_fold_scores(*proto, x, 4);
  ASSERT_EQ(oof.size(), 400u);
  // Row 0 is scored by a model fitted on rows 100..399 only.
  auto d = make_detector("t2", o);
  d->fit(x.slice_rows(100, 400));
  EXPECT_DOUBLE_EQ(oof[0], d->score(x.row(0)));
  const std::vector<double> smooth = trailing_mean(oof, 10);
  const double top = *std::max_element(smooth.begin() + 9, smooth.end());
  EXPECT_DOUBLE_EQ(calibrate_threshold(*proto, x, 10, 4, 1.0), top);
  EXPECT_DOUBLE_EQ(calibrate_threshold(*proto, x, 10, 4, 1.5), 1.5 * top);
  EXPECT_THROW(out_of_fold_scores(*proto, x.slice_rows(0, 5), 4), Error);
}

}  // namespace
}  // namespace mmfuse::sensor
