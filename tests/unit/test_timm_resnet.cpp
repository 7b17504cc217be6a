// timm ResNets against timm itself: tiny random-weight models (BasicBlock
// resnet18 and Bottleneck wide_resnet50_2 layouts, random batch-norm
// statistics) from tests/fixtures/timm_resnet, each stage's output compared
// with timm's eval() forward on the same input (scripts/synth_timm_resnet.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "io/safetensors.h"
#include "mmfuse/error.h"
#include "models/timm_resnet.h"

namespace mmfuse {
namespace {

namespace fs = std::filesystem;

const fs::path kTimmFixtures = fs::path(MMFUSE_FIXTURES) / "timm_resnet";

std::vector<float> reference_tensor(const SafetensorsFile& f, const std::string& name,
                                    std::vector<int64_t> shape) {
  const TensorInfo* t = f.find(name);
  EXPECT_NE(t, nullptr) << name;
  if (!t) return {};
  EXPECT_EQ(t->shape, shape) << name;
  std::vector<float> out(static_cast<size_t>(t->numel()));
  convert_to_f32(t->dtype, t->data, out.size(), out.data());
  return out;
}

void expect_matches_timm(const std::string& folder, bool bottleneck,
                         const std::vector<std::array<int, 3>>& shapes) {
  const fs::path dir = kTimmFixtures / folder;
  const auto net = TimmResNet::open(dir);
  EXPECT_EQ(net->config().bottleneck, bottleneck);
  const SafetensorsFile ref = SafetensorsFile::open(dir / "reference.safetensors");
  const std::vector<float> input = reference_tensor(ref, "input", {64, 64, 3});
  const std::vector<FeatureMap> out = net->forward(input.data(), 64, 64, 3);
  ASSERT_EQ(out.size(), 4u);
  for (int s = 0; s < 4; ++s) {
    const auto& [h, w, c] = shapes[s];
    ASSERT_EQ(out[s].height, h);
    ASSERT_EQ(out[s].width, w);
    ASSERT_EQ(out[s].channels, c);
    EXPECT_EQ(net->stage_channels(s), c);
    const std::vector<float> want =
        reference_tensor(ref, "layer" + std::to_string(s + 1), {h, w, c});
    float scale = 0.0f, diff = 0.0f;
    for (size_t i = 0; i < want.size(); ++i) {
      scale = std::max(scale, std::fabs(want[i]));
      diff = std::max(diff, std::fabs(want[i] - out[s].values[i]));
    }
    EXPECT_GT(scale, 0.0f);
    std::printf("%s layer%d: max abs diff %.3g (max abs %.3g)\n", folder.c_str(), s + 1, diff, scale);
    EXPECT_LE(diff, 1e-4f * scale) << folder << " layer" << s + 1 << ": max abs diff " << diff
                                   << " vs max abs " << scale;
  }
}

TEST(TimmResNet, BasicBlocksMatchTimm) {
  expect_matches_timm("resnet18-tiny", false,
                      {{16, 16, 8}, {8, 8, 16}, {4, 4, 24}, {2, 2, 32}});
}

TEST(TimmResNet, WideBottlenecksMatchTimm) {
  // wide_resnet50_2's layout: bottleneck width 2 x planes, 4 x planes out.
  expect_matches_timm("wide_resnet50_2-tiny", true,
                      {{16, 16, 16}, {8, 8, 32}, {4, 4, 48}, {2, 2, 64}});
}

TEST(TimmResNet, ConfigsItDoesNotRunAreRefused) {
  auto kind_of = [](const nlohmann::json& j) {
    try {
      timm_resnet_config_from_json(j, "config.json");
    } catch (const Error& e) {
      return e.kind();
    }
    return ErrorKind::internal;
  };
  EXPECT_EQ(kind_of({{"architecture", "vit_base_patch16_224"}}), ErrorKind::unsupported);
  EXPECT_EQ(kind_of({{"architecture", "resnet50"}, {"model_args", {{"stem_type", "deep"}}}}),
            ErrorKind::unsupported);
  EXPECT_EQ(kind_of({{"architecture", "resnet18"}, {"model_args", {{"layers", {1, 2}}}}}),
            ErrorKind::bad_input);
  const TimmResNetConfig c = timm_resnet_config_from_json(
      {{"architecture", "wide_resnet50_2.tv2_in1k"}}, "config.json");
  EXPECT_TRUE(c.bottleneck);
  EXPECT_EQ(c.layers, (std::array<int, 4>{3, 4, 6, 3}));
  EXPECT_FLOAT_EQ(c.mean[0], 0.485f);
  EXPECT_TRUE(is_timm_resnet_config({{"architecture", "resnet34"}}));
  EXPECT_FALSE(is_timm_resnet_config({{"model_type", "clip"}}));
  EXPECT_THROW(TimmResNet::open(kTimmFixtures / "missing"), Error);
}

}  // namespace
}  // namespace mmfuse
