// The weight-free image anomaly detector: descriptor invariance to exposure,
// fit / score / save / load, a synthetic scratch scoring above clean photos,
// and the error rules (the real-data floor is in tests/slow).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>

#include "detect/image_anomaly.h"
#include "mmfuse/error.h"
#include "test_util.h"
#include "vision/texture_features.h"

namespace mmfuse {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir(const std::string& name) {
  const fs::path dir =
      fs::temp_directory_path() / ("mmfuse_image_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// A brushed-metal-like texture: vertical streaks (per-column gain) over noise,
// a smooth horizontal exposure ramp. Even grey levels so halving is exact.
Image streaks(uint64_t seed, int w = 96, int h = 128) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> n(0.0, 1.0);
  std::vector<double> col(w);
  for (double& c : col) c = 8.0 * n(rng);
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.resize(static_cast<size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const double v = 100.0 + 20.0 * x / w + col[x] + 4.0 * n(rng);
      const uint8_t g = static_cast<uint8_t>(2 * std::clamp<long>(std::lround(v / 2), 0, 127));
      for (int k = 0; k < 3; ++k) img.rgb[(static_cast<size_t>(y) * w + x) * 3 + k] = g;
    }
  return img;
}

// A dark diagonal scratch, 2 pixels wide.
Image with_scratch(Image img) {
  for (int t = 0; t < 40; ++t)
    for (int d = 0; d < 2; ++d) {
      const int x = 30 + t / 2 + d, y = 40 + t;
      for (int k = 0; k < 3; ++k) img.rgb[(static_cast<size_t>(y) * img.width + x) * 3 + k] = 30;
    }
  return img;
}

// The format-4 terms (patch k-NN + photo + structure statistics), small.
ImageAnomalyConfig small_config() {
  ImageAnomalyConfig c;
  c.features.stride = 4;
  c.features.position_grid = 0;
  c.bank_size = 512;
  c.coreset_candidates = 2048;
  c.patch_knn = true;
  c.photo_statistics = true;
  c.position_gaussian = false;
  return c;
}

// The format-5 defaults (position Gaussian + structure term) on a smaller grid.
ImageAnomalyConfig position_config() {
  ImageAnomalyConfig c;
  c.features.stride = 4;
  c.features.position_grid = 16;
  return c;
}

TEST(TextureFeatures, InvariantToExposureGain) {
  const Image a = streaks(1);
  Image b = a;
  for (auto& v : b.rgb) v = static_cast<uint8_t>(v / 2);
  const TextureFeatureConfig cfg;
  const PatchGrid fa = texture_features(a, cfg), fb = texture_features(b, cfg);
  ASSERT_EQ(fa.rows, 128 / 8);
  ASSERT_EQ(fa.cols, 96 / 8);
  ASSERT_EQ(fa.dim, 24);
  ASSERT_EQ(fa.values.size(), fb.values.size());
  EXPECT_LT(test::max_abs_diff(fa.values, fb.values), 1e-4);
  // The photo statistics too.
  ASSERT_EQ(fa.statistics.size(), static_cast<size_t>(cfg.statistics_dim()));
  EXPECT_LT(test::max_abs_diff(fa.statistics, fb.statistics), 1e-4);
  ASSERT_EQ(fa.structure.size(), static_cast<size_t>(TextureFeatureConfig::structure_dim()));
  EXPECT_LT(test::max_abs_diff(fa.structure, fb.structure), 1e-4);
  // ... but not blind: another texture differs.
  EXPECT_GT(test::max_abs_diff(fa.values, texture_features(streaks(2), cfg).values), 0.05);
}

// Structure-tensor coherence: 1 where the texture runs one way (stripes), low
// for isotropic noise, and blind to the orientation (a transposed photo).
TEST(TextureFeatures, StructureCoherenceOfStripesAndNoise) {
  auto grey_image = [](int w, int h, auto value) {
    Image img;
    img.width = w;
    img.height = h;
    img.rgb.resize(static_cast<size_t>(w) * h * 3);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int k = 0; k < 3; ++k) img.rgb[(static_cast<size_t>(y) * w + x) * 3 + k] = value(x, y);
    return img;
  };
  const TextureFeatureConfig cfg;
  const double pi = std::acos(-1.0);
  const PatchGrid stripes = texture_features(grey_image(64, 64, [&](int x, int) {
    return static_cast<uint8_t>(std::lround(120.0 + 60.0 * std::sin(2.0 * pi * x / 16.0)));
  }), cfg);
  ASSERT_EQ(stripes.structure.size(), 21u);
  for (float c : stripes.structure) EXPECT_GT(c, 0.97f);
  std::mt19937_64 rng(5);
  std::vector<uint8_t> noise(64 * 48);
  for (auto& v : noise) v = static_cast<uint8_t>(60 + rng() % 120);
  const PatchGrid a = texture_features(grey_image(64, 48, [&](int x, int y) { return noise[y * 64 + x]; }), cfg);
  const PatchGrid b = texture_features(grey_image(48, 64, [&](int x, int y) { return noise[x * 64 + y]; }), cfg);
  EXPECT_LT(a.structure[4], 0.6f);  // the median at sigma 1
  for (size_t i = 1; i < a.structure.size(); ++i)
    if (i % 7) {
      EXPECT_GE(a.structure[i], a.structure[i - 1]);  // increasing percentiles per scale
    }
  EXPECT_LT(test::max_abs_diff(a.structure, b.structure), 1e-4);
}

TEST(TextureFeatures, RejectsPhotosSmallerThanACell) {
  Image tiny;
  tiny.width = 4;
  tiny.height = 4;
  tiny.rgb.assign(48, 100);
  EXPECT_THROW(texture_features(tiny, {}), Error);
}

TEST(ImageAnomaly, ScratchScoresAboveCleanPhotosAndModelRoundTrips) {
  const ImageAnomalyConfig cfg = small_config();
  std::vector<PatchGrid> good;
  for (uint64_t s = 0; s < 8; ++s) good.push_back(texture_features(streaks(s), cfg.features));
  ImageCalibration cal;
  const ImageAnomalyModel m = ImageAnomalyModel::fit(test::pool(), good, cfg, &cal);
  EXPECT_EQ(cal.folds, 5);
  EXPECT_EQ(cal.held_out_scores.size(), 8u);
  EXPECT_EQ(m.bank_rows(), 512u);
  EXPECT_GT(m.threshold(), 0.0);

  double clean_max = 0.0;
  for (uint64_t s = 100; s < 106; ++s)
    clean_max = std::max(clean_max, m.score_image(streaks(s)).score);
  const AnomalyMap scratched = m.score_image(with_scratch(streaks(100)));
  EXPECT_GT(scratched.score, clean_max);
  EXPECT_GE(scratched.score, m.threshold());
  // The map peaks on the scratch (x 30..51, y 40..79 -> cells 7..12, 10..19).
  const auto peak = std::max_element(scratched.cells.begin(), scratched.cells.end()) - scratched.cells.begin();
  const int pr = static_cast<int>(peak) / scratched.cols, pc = static_cast<int>(peak) % scratched.cols;
  EXPECT_GE(pr, 9);
  EXPECT_LE(pr, 20);
  EXPECT_GE(pc, 6);
  EXPECT_LE(pc, 13);

  // Save / load gives the same scores; the heat-map is a PNG of the photo's size.
  const fs::path dir = temp_dir("roundtrip") / "model";
  m.save(dir);
  EXPECT_FALSE(fs::exists(dir.string() + ".tmp-write"));
  const ImageAnomalyModel back = ImageAnomalyModel::load(dir);
  EXPECT_EQ(back.threshold(), m.threshold());
  EXPECT_EQ(back.score_image(with_scratch(streaks(100))).score, scratched.score);
  const std::string png = heatmap_png(scratched, 96, 128, m.threshold());
  ASSERT_GT(png.size(), 8u);
  EXPECT_EQ(png.substr(1, 3), "PNG");
  fs::remove_all(dir.parent_path());
}

// The photo's score is the mean of the top_k cells of the map, the map
// shifted by its own median; with the photo-statistics term the map is in
// score units (its top cells give the score). An older folder (version 1: no
// such settings) is read with the plain maximum it was fitted with.
TEST(ImageAnomaly, ScoreIsTopCellMeanOverMedianAndVersionOneStillLoads) {
  ImageAnomalyConfig cfg = small_config();
  std::vector<PatchGrid> good;
  for (uint64_t s = 0; s < 3; ++s) good.push_back(texture_features(streaks(s), cfg.features));
  const ImageAnomalyModel full = ImageAnomalyModel::fit(test::pool(), good, cfg);
  cfg.photo_statistics = false;
  cfg.structure_statistics = false;
  const ImageAnomalyModel m = ImageAnomalyModel::fit(test::pool(), good, cfg);
  ImageAnomalyConfig plain_cfg = cfg;
  plain_cfg.top_k = 1;
  plain_cfg.subtract_median = false;
  const ImageAnomalyModel plain = ImageAnomalyModel::fit(test::pool(), good, plain_cfg);
  const PatchGrid probe = texture_features(with_scratch(streaks(9)), cfg.features);
  ASSERT_EQ(probe.statistics.size(), static_cast<size_t>(cfg.features.statistics_dim()));
  const AnomalyMap a = m.score(probe), b = plain.score(probe);
  ASSERT_EQ(a.cells.size(), b.cells.size());
  std::vector<float> raw = b.cells;
  std::sort(raw.begin(), raw.end());
  EXPECT_EQ(b.score, raw.back());
  const size_t n = raw.size();
  const double median = n % 2 ? raw[n / 2] : 0.5 * (raw[n / 2 - 1] + raw[n / 2]);
  EXPECT_NEAR(a.score, (raw[n - 1] + raw[n - 2] + raw[n - 3]) / 3.0 - median, 1e-5);
  EXPECT_NEAR(a.cells[0], b.cells[0] - median, 1e-5);
  // With the photo term: score = mean of the map's top 3 cells.
  const AnomalyMap c = full.score(probe);
  std::vector<float> top = c.cells;
  std::sort(top.begin(), top.end());
  EXPECT_NEAR(c.score, (top[n - 1] + top[n - 2] + top[n - 3]) / 3.0, 1e-4);

  const fs::path dir = temp_dir("v1") / "model";
  full.save(dir);
  EXPECT_EQ(ImageAnomalyModel::load(dir).score(probe).score, c.score);
  {
    std::ifstream in(dir / "config.json");
    nlohmann::json j = nlohmann::json::parse(in);
    j["format_version"] = 1;
    j["settings"].erase("top_k");
    j["settings"].erase("subtract_median");
    j["settings"].erase("photo_statistics");
    j["settings"].erase("structure_statistics");
    std::ofstream(dir / "config.json") << j.dump();
  }
  const ImageAnomalyModel v1 = ImageAnomalyModel::load(dir);
  EXPECT_EQ(v1.config().top_k, 1);
  EXPECT_FALSE(v1.config().subtract_median);
  EXPECT_FALSE(v1.config().photo_statistics);
  EXPECT_EQ(v1.score(probe).score, b.score);
  fs::remove_all(dir.parent_path());
}

// Version 4 added the structure term; a version-3 folder scores with the
// patch and photo terms only, as it was fitted.
TEST(ImageAnomaly, VersionThreeFolderScoresWithoutTheStructureTerm) {
  ImageAnomalyConfig cfg = small_config();
  cfg.bank_size = 128;  // small and 2 folds: the test stays fast
  cfg.coreset_candidates = 512;
  cfg.folds = 2;
  std::vector<PatchGrid> good;
  for (uint64_t s = 0; s < 3; ++s) good.push_back(texture_features(streaks(s), cfg.features));
  const ImageAnomalyModel full = ImageAnomalyModel::fit(test::pool(), good, cfg);
  cfg.structure_statistics = false;
  const ImageAnomalyModel v3 = ImageAnomalyModel::fit(test::pool(), good, cfg);
  const PatchGrid probe = texture_features(with_scratch(streaks(9)), cfg.features);
  EXPECT_NE(full.score(probe).score, v3.score(probe).score);
  const fs::path dir = temp_dir("v3") / "model";
  v3.save(dir);
  {
    std::ifstream in(dir / "config.json");
    nlohmann::json j = nlohmann::json::parse(in);
    EXPECT_EQ(j["format_version"], ImageAnomalyModel::kFormatVersion);
    j["format_version"] = 3;
    j["settings"].erase("structure_statistics");
    j["terms"].erase("structure_centre");
    j["terms"].erase("structure_spread");
    std::ofstream(dir / "config.json") << j.dump();
  }
  const ImageAnomalyModel back = ImageAnomalyModel::load(dir);
  EXPECT_FALSE(back.config().structure_statistics);
  EXPECT_TRUE(back.config().photo_statistics);
  EXPECT_EQ(back.score(probe).score, v3.score(probe).score);
  fs::remove_all(dir.parent_path());
}

// Format 5's default: the per-position Gaussian (PaDiM) over the photo-aligned
// grid plus the structure term. A scratch scores above clean photos, the map
// peaks on it, and the model round-trips without a memory bank.
TEST(ImageAnomaly, PositionTermFindsTheScratchAndRoundTrips) {
  const ImageAnomalyConfig cfg = position_config();
  EXPECT_FALSE(cfg.patch_knn);
  EXPECT_TRUE(cfg.position_gaussian);
  std::vector<PatchGrid> good;
  for (uint64_t s = 0; s < 8; ++s) good.push_back(texture_features(streaks(s), cfg.features));
  ASSERT_EQ(good[0].aligned_grid, 16);
  ASSERT_EQ(good[0].aligned_dim, 44);
  ASSERT_EQ(good[0].aligned.size(), 16u * 16u * 44u);
  const ImageAnomalyModel m = ImageAnomalyModel::fit(test::pool(), good, cfg);
  EXPECT_EQ(m.bank_rows(), 0u);
  double clean_max = 0.0;
  for (uint64_t s = 100; s < 106; ++s) clean_max = std::max(clean_max, m.score_image(streaks(s)).score);
  const AnomalyMap scratched = m.score_image(with_scratch(streaks(100)));
  EXPECT_GT(scratched.score, clean_max);
  EXPECT_GE(scratched.score, m.threshold());
  // The map is on the stride grid; it peaks on the scratch (cells 7..12, 10..19).
  ASSERT_EQ(scratched.rows, 128 / 4);
  ASSERT_EQ(scratched.cols, 96 / 4);
  const auto peak = std::max_element(scratched.cells.begin(), scratched.cells.end()) - scratched.cells.begin();
  const int pr = static_cast<int>(peak) / scratched.cols, pc = static_cast<int>(peak) % scratched.cols;
  EXPECT_GE(pr, 8);
  EXPECT_LE(pr, 21);
  EXPECT_GE(pc, 5);
  EXPECT_LE(pc, 14);
  const fs::path dir = temp_dir("position") / "model";
  m.save(dir);
  const ImageAnomalyModel back = ImageAnomalyModel::load(dir);
  EXPECT_TRUE(back.config().position_gaussian);
  EXPECT_FALSE(back.config().patch_knn);
  EXPECT_EQ(back.score_image(with_scratch(streaks(100))).score, scratched.score);
  fs::remove_all(dir.parent_path());
}

// The position term against a direct computation: with shrinkage 1 and no
// neighbourhood the covariance of cell c is (its trace / dim) I, so a photo's
// cell distance is |z - mean_c| sqrt(dim / trace_c) (z standardised over all
// aligned cells of the good photos); the term is the top 3 cells less the
// median, in units of the held-out spread saved in config.json.
TEST(ImageAnomaly, PositionTermIsTheMahalanobisDistanceOfEachCell) {
  ImageAnomalyConfig cfg = position_config();
  cfg.features.position_grid = 6;
  cfg.structure_statistics = false;
  cfg.position_neighbourhood = 0;
  cfg.position_shrinkage = 1.0f;
  cfg.folds = 2;
  std::vector<PatchGrid> good;
  for (uint64_t s = 0; s < 5; ++s) good.push_back(texture_features(streaks(s), cfg.features));
  const ImageAnomalyModel m = ImageAnomalyModel::fit(test::pool(), good, cfg);
  const PatchGrid probe = texture_features(with_scratch(streaks(9)), cfg.features);
  const int d = 44, cells = 36;
  std::vector<double> mean(d, 0.0), sd(d, 0.0);
  for (const auto& g : good)
    for (size_t i = 0; i < g.aligned.size(); ++i) mean[i % d] += g.aligned[i] / (5.0 * cells);
  for (const auto& g : good)
    for (size_t i = 0; i < g.aligned.size(); ++i) sd[i % d] += std::pow(g.aligned[i] - mean[i % d], 2) / (5.0 * cells);
  auto z = [&](const PatchGrid& g, int c, int j) { return (g.aligned[c * d + j] - mean[j]) / (std::sqrt(sd[j]) + 1e-6); };
  std::vector<double> dist(cells);
  for (int c = 0; c < cells; ++c) {
    double trace = 0.0, sq = 0.0;
    for (int j = 0; j < d; ++j) {
      double mu = 0.0, var = 0.0;
      for (const auto& g : good) mu += z(g, c, j) / 5.0;
      for (const auto& g : good) var += std::pow(z(g, c, j) - mu, 2) / 5.0;
      trace += var;
      sq += std::pow(z(probe, c, j) - mu, 2);
    }
    dist[c] = std::sqrt(sq * d / trace);
  }
  std::sort(dist.begin(), dist.end());
  const double median = 0.5 * (dist[17] + dist[18]);
  const double term = (dist[35] + dist[34] + dist[33]) / 3.0 - median;
  const fs::path dir = temp_dir("mahalanobis") / "model";
  m.save(dir);
  std::ifstream in(dir / "config.json");
  const nlohmann::json j = nlohmann::json::parse(in);
  const double centre = j["terms"]["position_centre"], spread = j["terms"]["position_spread"];
  EXPECT_NEAR(m.score(probe).score, (term - centre) / spread, 1e-3 * std::max(1.0, std::abs(term / spread)));
  fs::remove_all(dir.parent_path());
}

TEST(ImageAnomaly, ScoreIsDeterministicAndIndependentOfOtherCalls) {
  const ImageAnomalyConfig cfg = small_config();
  std::vector<PatchGrid> good;
  for (uint64_t s = 0; s < 4; ++s) good.push_back(texture_features(streaks(s), cfg.features));
  const ImageAnomalyModel a = ImageAnomalyModel::fit(test::pool(), good, cfg);
  const ImageAnomalyModel b = ImageAnomalyModel::fit(test::pool(), good, cfg);
  const PatchGrid probe = texture_features(with_scratch(streaks(7)), cfg.features);
  const double first = a.score(probe).score;
  a.score(texture_features(streaks(8), cfg.features));
  EXPECT_EQ(a.score(probe).score, first);
  EXPECT_EQ(b.score(probe).score, first);
  EXPECT_EQ(a.threshold(), b.threshold());
}

TEST(ImageAnomaly, BadInputIsAClearError) {
  const ImageAnomalyConfig cfg = small_config();
  std::vector<PatchGrid> one = {texture_features(streaks(0), cfg.features)};
  EXPECT_THROW(ImageAnomalyModel::fit(test::pool(), one, cfg), Error);
  EXPECT_THROW(ImageAnomalyModel::fit(test::pool(), {}, cfg), Error);

  std::vector<PatchGrid> good;
  for (uint64_t s = 0; s < 3; ++s) good.push_back(texture_features(streaks(s), cfg.features));
  const ImageAnomalyModel m = ImageAnomalyModel::fit(test::pool(), good, cfg);
  const fs::path root = temp_dir("bad");
  const fs::path dir = root / "model";
  m.save(dir);
  // Another format version.
  {
    std::ifstream in(dir / "config.json");
    nlohmann::json j = nlohmann::json::parse(in);
    j["format_version"] = 99;
    std::ofstream(dir / "config.json") << j.dump();
    try {
      ImageAnomalyModel::load(dir);
      FAIL() << "loaded a model of another format version";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::bad_input);
      EXPECT_NE(std::string(e.what()).find("format_version 99"), std::string::npos) << e.what();
    }
  }
  // Weights that are not the ones the manifest names.
  m.save(dir);
  {
    std::fstream f(dir / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-4, std::ios::end);
    f.write("\x7f\x7f\x7f\x7f", 4);
  }
  try {
    ImageAnomalyModel::load(dir);
    FAIL() << "loaded tampered weights";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos) << e.what();
  }
  // A photo scored with descriptors of another size.
  TextureFeatureConfig other;
  other.sigmas = {1.0f};
  EXPECT_THROW(m.score(texture_features(streaks(5), other)), Error);
  fs::remove_all(root);
}

}  // namespace
}  // namespace mmfuse
