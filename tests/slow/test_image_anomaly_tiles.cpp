// The weight-free image anomaly detector on the shared magnetic tiles (fit on
// the 100 MT_Free photos): a regression floor well below the measured figures
// of docs/image_anomaly.md. Skipped when ../shared/data is absent.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "detect/image_anomaly.h"
#include "mmfuse/thread_pool.h"
#include "tools/image_anomaly_eval.h"

namespace mmfuse {
namespace {

namespace fs = std::filesystem;

// Regression guard on the real photos (the measured figures are in
// docs/image_anomaly.md); the floor sits well below them.
TEST(ImageAnomaly, MagneticTilesRegressionFloor) {
  const fs::path root = fs::path(MMFUSE_FIXTURES) / "../../../shared/data/images/magnetic_tile";
  if (!fs::exists(root / "manifest.csv"))
    GTEST_SKIP() << "magnetic tiles not present (../shared/data/images/magnetic_tile)";
  ThreadPool pool(2);
  const ImageEvalReport r = evaluate_image_anomaly(pool, root, ImageAnomalyConfig{});
  std::printf("[ tiles   ] image AUROC %.3f pixel AUROC %.3f\n", r.image_auroc, r.pixel_auroc);
  EXPECT_EQ(r.good, 100u);
  EXPECT_GE(r.image_auroc, 0.84);  // v5 measures 0.863
  EXPECT_GE(r.pixel_auroc, 0.6);   // v5 measures 0.671
}

}  // namespace
}  // namespace mmfuse
