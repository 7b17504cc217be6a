// The SKAB protocol: metric formulas, file discovery, and the full evaluation
// on the real data when ../shared/data is present (skipped otherwise).
#include <gtest/gtest.h>

#include "mmfuse/error.h"
#include "test_sensor_util.h"
#include "tools/skab_eval.h"

namespace mmfuse::sensor {
namespace {

TEST(SensorSkab, MetricsFollowTheSkabDefinitions) {
  Confusion c;
  c.tp = 80, c.fn = 20, c.fp = 10, c.tn = 90;
  const OutlierMetrics m = outlier_metrics(c);
  EXPECT_DOUBLE_EQ(m.f1, 80.0 / (80 + (20 + 10) / 2.0));
  EXPECT_DOUBLE_EQ(m.far, 10.0);
  EXPECT_DOUBLE_EQ(m.mar, 20.0);
  const OutlierMetrics null = outlier_metrics({0, 90, 0, 100});
  EXPECT_EQ(null.f1, 0.0);
  EXPECT_EQ(null.mar, 100.0);
}

TEST(SensorSkab, FindsFilesInNumericOrderAndSkipsAnomalyFree) {
  test::TempDir dir;
  std::filesystem::create_directories(dir.file("valve1"));
  std::filesystem::create_directories(dir.file("anomaly-free"));
  for (const char* f :
       {"valve1/10.csv", "valve1/2.csv", "valve1/0.csv", "anomaly-free/anomaly-free.csv"})
    test::write_text(dir.file(f), "a\n1\n");
  const auto files = find_skab_files(dir.path());
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[0].filename(), "0.csv");
  EXPECT_EQ(files[1].filename(), "2.csv");
  EXPECT_EQ(files[2].filename(), "10.csv");
  EXPECT_THROW(find_skab_files(dir.file("missing")), Error);
  EXPECT_THROW(find_skab_files(dir.file("anomaly-free")), Error);
}

// The targets on the files present (valve1 + other), with the defaults of
// `sensor detect` (despike on, slow channels left out by the label-free rule
// decided per file from its training rows, threshold margin 1.1): the
// ensemble at F1 >= 0.80 with FAR <= 20 %, and F1 >= 0.80 on each folder
// alone (a split the defaults were not chosen on); our Isolation Forest at
// least the leaderboard's F1 0.29.
TEST(SensorSkab, ReachesTheTargetsOnRealData) {
  const auto dir = test::skab_dir();
  if (dir.empty()) GTEST_SKIP() << "SKAB data not present (../shared/data/sensors/skab)";
  const auto files = find_skab_files(dir);
  EXPECT_EQ(files.size(), 30u);
  PipelineOptions p;  // what `sensor detect` runs by default
  p.cleaning.despike = true;
  for (const std::string method : {"iforest", "ensemble"}) {
    p.method = method;
    const SkabResult r = evaluate_skab(dir, files, p, 400, 2);
    std::printf("[ skab    ] %-9s F1 %.3f FAR %.2f %% MAR %.2f %%\n", method.c_str(), r.metrics.f1,
                r.metrics.far, r.metrics.mar);
    if (method == "iforest") {
      EXPECT_GE(r.metrics.f1, 0.29);
      continue;
    }
    EXPECT_GE(r.metrics.f1, 0.80);
    EXPECT_LE(r.metrics.far, 20.0);
    Confusion valve, other;
    for (const auto& f : r.files) (f.file.rfind("valve1", 0) == 0 ? valve : other) += f.confusion;
    EXPECT_GE(outlier_metrics(valve).f1, 0.80);
    EXPECT_GE(outlier_metrics(other).f1, 0.80);
  }
}

}  // namespace
}  // namespace mmfuse::sensor
