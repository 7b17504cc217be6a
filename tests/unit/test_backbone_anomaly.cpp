// `image fit --backbone`: PatchCore features from a timm ResNet folder equal
// Anomalib's embedding computed with timm (tests/fixtures/timm_resnet,
// scripts/synth_timm_resnet.py), and a model fitted on them is saved with the
// backbone's path and hash, reloads to the same scores, and refuses a
// backbone folder that changed since the fit.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "detect/backbone_features.h"
#include "detect/image_anomaly.h"
#include "io/safetensors.h"
#include "mmfuse/error.h"

namespace mmfuse {
namespace {

namespace fs = std::filesystem;

const fs::path kBackboneFixtures = fs::path(MMFUSE_FIXTURES) / "timm_resnet";

Image reference_photo(const SafetensorsFile& ref) {
  const TensorInfo* t = ref.find("photo");
  EXPECT_NE(t, nullptr);
  Image img;
  if (!t) return img;
  img.height = static_cast<int>(t->shape[0]);
  img.width = static_cast<int>(t->shape[1]);
  std::vector<float> v(static_cast<size_t>(t->numel()));
  convert_to_f32(t->dtype, t->data, v.size(), v.data());
  img.rgb.assign(v.begin(), v.end());
  return img;
}

TEST(BackboneFeatures, MatchAnomalibsPatchCoreEmbedding) {
  for (const char* folder : {"resnet18-tiny", "wide_resnet50_2-tiny"}) {
    const fs::path dir = kBackboneFixtures / folder;
    const SafetensorsFile ref = SafetensorsFile::open(dir / "reference.safetensors");
    const auto source = open_backbone_features(dir);
    const PatchGrid g = source->features(reference_photo(ref));
    const TensorInfo* want = ref.find("patchcore");
    ASSERT_NE(want, nullptr);
    ASSERT_EQ(g.rows, want->shape[0]) << folder;
    ASSERT_EQ(g.cols, want->shape[1]) << folder;
    ASSERT_EQ(g.dim, want->shape[2]) << folder;
    EXPECT_EQ(source->dim(), g.dim);
    std::vector<float> w(static_cast<size_t>(want->numel()));
    convert_to_f32(want->dtype, want->data, w.size(), w.data());
    float scale = 0, diff = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      scale = std::max(scale, std::fabs(w[i]));
      diff = std::max(diff, std::fabs(w[i] - g.values[i]));
    }
    std::printf("%s PatchCore embedding: max abs diff %.3g (max abs %.3g)\n", folder, diff, scale);
    EXPECT_LE(diff, 1e-4f * scale) << folder << ": max abs diff " << diff << " of " << scale;
    EXPECT_EQ(source->to_json()["sha256"], model_folder_sha256(dir));
  }
}

Image backbone_test_photo(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> noise(-10, 10);
  Image img;
  img.width = img.height = 64;
  img.rgb.resize(64 * 64 * 3);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x) {
      const int v = 128 + static_cast<int>(40 * std::sin((x + 2 * y) * 0.4)) + noise(rng);
      for (int c = 0; c < 3; ++c) img.rgb[(y * 64 + x) * 3 + c] = static_cast<uint8_t>(std::clamp(v, 0, 255));
    }
  return img;
}

TEST(BackboneFeatures, ModelRecordsTheBackboneAndRefusesAChangedOne) {
  const fs::path tmp = fs::temp_directory_path() / ("mmfuse_backbone_" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  fs::copy(kBackboneFixtures / "resnet18-tiny", tmp / "backbone");
  const auto source = open_backbone_features(tmp / "backbone");
  std::vector<PatchGrid> grids;
  for (uint64_t i = 0; i < 4; ++i) grids.push_back(source->features(backbone_test_photo(i)));
  ImageAnomalyConfig config;
  config.bank_size = 64;
  config.coreset_candidates = 128;
  config.folds = 2;
  config.photo_statistics = false;  // terms of the texture descriptors only
  config.structure_statistics = false;
  config.patch_knn = true;  // the backbone's patches in the memory bank
  config.position_gaussian = false;
  ThreadPool pool(1);
  ImageAnomalyModel model = ImageAnomalyModel::fit(pool, grids, config);
  model.set_feature_source(source);
  model.save(tmp / "model");

  const ImageAnomalyModel loaded = ImageAnomalyModel::load(tmp / "model");
  ASSERT_NE(loaded.feature_source(), nullptr);
  EXPECT_EQ(loaded.dim(), 40);  // layer2 16 + layer3 24 channels
  EXPECT_EQ(loaded.feature_source()->to_json()["path"], fs::absolute(tmp / "backbone").string());
  const Image probe = backbone_test_photo(9);
  EXPECT_DOUBLE_EQ(loaded.score_image(probe).score, model.score_image(probe).score);
  EXPECT_DOUBLE_EQ(loaded.threshold(), model.threshold());

  // The backbone's weights change after the fit: the model is refused, naming the cause.
  {
    std::ofstream out(tmp / "backbone" / "config.json", std::ios::app);
    out << "\n";
  }
  try {
    ImageAnomalyModel::load(tmp / "model");
    ADD_FAILURE() << "expected bad_input";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    EXPECT_NE(std::string(e.what()).find("changed since the fit"), std::string::npos) << e.what();
  }
  fs::remove_all(tmp);
}

}  // namespace
}  // namespace mmfuse
