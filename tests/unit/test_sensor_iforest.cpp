// Isolation Forest: the algorithm's invariants, determinism, and agreement with
// scikit-learn's IsolationForest.score_samples on the same data.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <sstream>

#include "detect/isolation_forest.h"
#include "mmfuse/error.h"
#include "sensor/csv_source.h"
#include "test_sensor_util.h"
#include "tools/synthetic.h"

namespace mmfuse::sensor {
namespace {

using test::TempDir;

// A correlated Gaussian blob (rows 0..n-1) with 5 far points appended. The far
// points stand out in two or three channels: a point extreme in one channel only
// scores just like the most extreme training row there (thresholds are drawn
// inside the training range), a known property of the algorithm.
Matrix blob_with_outliers(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0.0, 1.0);
  Matrix x(n + 5, 3);
  for (size_t r = 0; r < n; ++r) {
    const double a = g(rng), b = g(rng);
    x(r, 0) = a;
    x(r, 1) = 0.6 * a + 0.8 * b;
    x(r, 2) = 5.0 + 0.5 * g(rng);
  }
  const double far[5][3] = {{6, 6, 5}, {-5, 4, 5}, {5, -5, 12}, {4, -4, 2}, {-4, -6, 1}};
  for (size_t i = 0; i < 5; ++i)
    for (size_t c = 0; c < 3; ++c) x(n + i, c) = far[i][c];
  return x;
}

TEST(IsolationForest, AveragePathLengthMatchesThePaper) {
  EXPECT_DOUBLE_EQ(IsolationForest::average_path_length(0), 0.0);
  EXPECT_DOUBLE_EQ(IsolationForest::average_path_length(1), 0.0);
  EXPECT_DOUBLE_EQ(IsolationForest::average_path_length(2), 1.0);
  // c(n) = 2 (ln(n-1) + gamma) - 2 (n-1)/n
  EXPECT_NEAR(IsolationForest::average_path_length(3), 2 * (std::log(2.0) + 0.5772156649) - 4.0 / 3,
              1e-9);
  EXPECT_NEAR(IsolationForest::average_path_length(256), 10.244770920116851, 1e-9);
}

TEST(IsolationForest, SubSampleIsCappedAt256) {
  DetectorOptions o;
  IsolationForest small(o), large(o);
  small.fit(blob_with_outliers(100, 1).slice_rows(0, 100));
  large.fit(blob_with_outliers(1000, 1).slice_rows(0, 1000));
  EXPECT_EQ(small.psi(), 100u);
  EXPECT_EQ(large.psi(), 256u);
}

TEST(IsolationForest, PathLengthsRespectTheHeightLimit) {
  DetectorOptions o;
  IsolationForest f(o);
  const Matrix x = blob_with_outliers(1000, 2);
  f.fit(x.slice_rows(0, 1000));
  // E[h] <= height limit + c(largest possible leaf) and >= 1 for any point.
  const double limit = std::ceil(std::log2(256.0));
  for (size_t r = 0; r < x.rows; ++r) {
    const double h = f.mean_path_length(x.row(r));
    EXPECT_GE(h, 1.0);
    EXPECT_LE(h, limit + IsolationForest::average_path_length(256));
  }
}

TEST(IsolationForest, OutliersScoreHigherThanInliers) {
  DetectorOptions o;
  IsolationForest f(o);
  const Matrix x = blob_with_outliers(1000, 3);
  f.fit(x.slice_rows(0, 1000));
  double inlier_max = 0.0, outlier_min = 1.0;
  std::vector<double> inliers;
  for (size_t r = 0; r < 1000; ++r) inliers.push_back(f.score(x.row(r)));
  std::sort(inliers.begin(), inliers.end());
  inlier_max = inliers[989];  // 99th percentile
  for (size_t r = 1000; r < x.rows; ++r) outlier_min = std::min(outlier_min, f.score(x.row(r)));
  EXPECT_GT(outlier_min, inlier_max);
  EXPECT_GT(outlier_min, 0.6);
  EXPECT_NEAR(inliers[500], 0.45, 0.07);  // typical points sit a little below 0.5
  for (double s : inliers) {
    EXPECT_GT(s, 0.0);
    EXPECT_LT(s, 1.0);
  }
}

TEST(IsolationForest, DeterministicGivenSeed) {
  const Matrix x = blob_with_outliers(500, 4);
  DetectorOptions a, b;
  a.seed = b.seed = 7;
  IsolationForest fa(a), fb(b);
  fa.fit(x);
  fb.fit(x);
  DetectorOptions c;
  c.seed = 8;
  IsolationForest fc(c);
  fc.fit(x);
  bool any_diff = false;
  for (size_t r = 0; r < x.rows; ++r) {
    EXPECT_EQ(fa.score(x.row(r)), fb.score(x.row(r)));
    any_diff |= fa.score(x.row(r)) != fc.score(x.row(r));
  }
  EXPECT_TRUE(any_diff);
}

TEST(IsolationForest, ConstantDataGivesLeavesNotCrashes) {
  Matrix x(50, 2, 3.0);
  DetectorOptions o;
  IsolationForest f(o);
  f.fit(x);
  // Every row is identical: the root is a leaf of 50, h = c(50) for all.
  EXPECT_NEAR(f.mean_path_length(x.row(0)), IsolationForest::average_path_length(50), 1e-12);
  EXPECT_THROW(f.fit(Matrix(1, 2, 0.0)), Error);
}

// Writes x as a comma CSV with header c0,c1,...
void write_matrix_csv(const std::filesystem::path& p, const Matrix& x) {
  std::ostringstream s;
  s.precision(17);
  for (size_t c = 0; c < x.cols; ++c) s << (c ? "," : "") << "c" << c;
  s << "\n";
  for (size_t r = 0; r < x.rows; ++r) {
    for (size_t c = 0; c < x.cols; ++c) s << (c ? "," : "") << x(r, c);
    s << "\n";
  }
  test::write_text(p, s.str());
}

struct SklearnScores {
  std::vector<double> seed0, seed1;
};

SklearnScores run_sklearn(const TempDir& dir, const Matrix& x, size_t train_rows, int trees) {
  write_matrix_csv(dir.file("data.csv"), x);
  const std::string tool = std::string(MMFUSE_FIXTURES) + "/../tools/iforest_sklearn.py";
  const std::string cmd = "/usr/bin/python3 " + tool + " " + dir.file("data.csv").string() + " " +
                          dir.file("sk.csv").string() + " --train-rows " +
                          std::to_string(train_rows) + " --trees " + std::to_string(trees) +
                          " --seed 0 --seed 1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const SensorTable t = read_csv(dir.file("sk.csv"), {});
  SklearnScores s;
  for (size_t r = 0; r < t.rows(); ++r) {
    s.seed0.push_back(-t.values(r, 0));  // score_samples is minus the paper's score
    s.seed1.push_back(-t.values(r, 1));
  }
  return s;
}

// Random trees differ between implementations, so scores are compared the way
// two scikit-learn seeds compare with each other: our distance from
// scikit-learn must be within that noise floor (plus a small slack), and the
// rankings must agree.
void expect_parity(const Matrix& x, size_t train_rows, int trees, double min_spearman) {
  if (!test::python_has("sklearn, numpy"))
    GTEST_SKIP() << "/usr/bin/python3 with scikit-learn not available";
  TempDir dir;
  const SklearnScores sk = run_sklearn(dir, x, train_rows, trees);
  ASSERT_EQ(sk.seed0.size(), x.rows);
  DetectorOptions o;
  o.trees = trees;
  IsolationForest f(o);
  f.fit(x.slice_rows(0, train_rows));
  std::vector<double> ours;
  for (size_t r = 0; r < x.rows; ++r) ours.push_back(f.score(x.row(r)));
  const double rho = test::spearman(ours, sk.seed0);
  const double ours_vs_sk = test::mean_abs_diff(ours, sk.seed0);
  const double sk_vs_sk = test::mean_abs_diff(sk.seed1, sk.seed0);
  double mean_ours = 0, mean_sk = 0, mean_sk1 = 0;
  for (size_t i = 0; i < ours.size(); ++i)
    mean_ours += ours[i], mean_sk += sk.seed0[i], mean_sk1 += sk.seed1[i];
  mean_ours /= static_cast<double>(ours.size());
  mean_sk /= static_cast<double>(ours.size());
  mean_sk1 /= static_cast<double>(ours.size());
  std::printf(
      "[ parity  ] trees %d: spearman %.4f (sklearn seed-vs-seed %.4f), mean |diff| %.4f "
      "(sklearn seed-vs-seed %.4f), mean score %.4f vs %.4f (sklearn seed 1: %.4f)\n",
      trees, rho, test::spearman(sk.seed1, sk.seed0), ours_vs_sk, sk_vs_sk, mean_ours, mean_sk,
      mean_sk1);
  EXPECT_GT(rho, min_spearman);
  EXPECT_LT(ours_vs_sk, 1.5 * sk_vs_sk + 0.002);
  EXPECT_NEAR(mean_ours, mean_sk, 0.01);
}

TEST(IsolationForestParity, MatchesScikitLearnScoreSamples) {
  expect_parity(blob_with_outliers(1000, 11), 1000, 100, 0.95);
}

TEST(IsolationForestParity, MatchesScikitLearnWithManyTrees) {
  // With 1000 trees the Monte-Carlo noise shrinks and the scores must agree closely.
  expect_parity(blob_with_outliers(1000, 12), 1000, 1000, 0.99);
}

TEST(IsolationForestParity, MatchesScikitLearnOnSensorLikeData) {
  SyntheticOptions s;
  s.rows = 1200;
  s.channels = 6;
  s.seed = 3;
  s.fault_begin = 900;
  s.fault_end = 1000;
  expect_parity(synthetic_sensor_data(s), 400, 100, 0.95);
}

}  // namespace
}  // namespace mmfuse::sensor
