// Log-mel / MFCC parity with the NumPy definition (training/sound_features.py)
// on the fixtures written by tests/tools/make_sound_fixtures.py: 1e-4 in dB
// (log-mel) and in cepstral units (MFCC).
#include <gtest/gtest.h>

#include <cmath>

#include "audio/mel_features.h"
#include "io/model_folder.h"
#include "mmfuse/error.h"
#include "test_util.h"

namespace mmfuse {
namespace {

using test::fixture;
using test::max_abs_diff;
using test::Reference;

constexpr double kTolerance = 1e-4;

TEST(Mfcc, MatchesNumpyReference) {
  const nlohmann::json cases = read_json_file(fixture("sound/features/cases.json"));
  const Reference ref(fixture("sound/features/reference.safetensors"));
  ASSERT_GE(cases["cases"].size(), 8u);
  double worst_mel = 0.0, worst_mfcc = 0.0;
  for (const auto& c : cases["cases"]) {
    const std::string name = c["name"].get<std::string>();
    SCOPED_TRACE(name + " (" + c["config_name"].get<std::string>() + ")");
    const FeatureConfig config = feature_config_from_json(c["config"], name);
    const MelExtractor mel(config);
    const std::vector<float> signal = ref.f32(c["signal"].get<std::string>());

    const std::vector<float> log_mel = mel.log_mel(signal);
    const std::vector<int64_t> shape = ref.shape(name + ".log_mel");
    ASSERT_EQ(shape.size(), 2u);
    EXPECT_EQ(static_cast<size_t>(shape[0]), mel.frames(signal.size()));
    EXPECT_EQ(shape[1], config.n_mels);
    const double d_mel = max_abs_diff(log_mel, ref.f32(name + ".log_mel"));
    EXPECT_LE(d_mel, kTolerance);

    const std::vector<float> mfcc = mel.mfcc(signal);
    const double d_mfcc = max_abs_diff(mfcc, ref.f32(name + ".mfcc"));
    EXPECT_LE(d_mfcc, kTolerance);
    worst_mel = std::max(worst_mel, d_mel);
    worst_mfcc = std::max(worst_mfcc, d_mfcc);
  }
  std::printf("[ Mfcc ] max |C++ - NumPy|: log-mel %.3g dB, MFCC %.3g\n", worst_mel, worst_mfcc);
}

TEST(Mfcc, StandardizeMatchesStandardScaler) {
  const Reference ref(fixture("sound/features/reference.safetensors"));
  const MelExtractor mel(FeatureConfig{});
  std::vector<float> mfcc = mel.mfcc(ref.f32("signal.hum_noise_0p5s"));
  const size_t frames = mfcc.size() / 40;
  standardize_columns(mfcc.data(), frames, 40);
  EXPECT_LE(max_abs_diff(mfcc, ref.f32("case0.mfcc_standardized")), 1e-4);
}

TEST(Mfcc, FilterbankIsSlaneyAreaNormalised) {
  FeatureConfig config;
  config.n_fft = 2048;
  config.frame_length = 2048;
  const MelExtractor mel(config);
  const std::vector<float> fb = mel.filterbank();
  const size_t bins = static_cast<size_t>(config.n_bins());
  // Each triangle integrates to ~1 over frequency (area normalisation), so
  // sum(weights) * bin_width ~ 1 for filters much wider than a bin.
  const double bin_hz = config.sample_rate / 2.0 / static_cast<double>(bins - 1);
  for (int m : {10, 30, 63}) {
    double sum = 0.0;
    for (size_t k = 0; k < bins; ++k) sum += fb[static_cast<size_t>(m) * bins + k];
    EXPECT_NEAR(sum * bin_hz, 1.0, 0.05) << "filter " << m;
  }
}

TEST(Mfcc, FrameCountFollowsCentring) {
  FeatureConfig config;
  const MelExtractor centred(config);
  EXPECT_EQ(centred.frames(16000), 101u);  // 1 + 16000 / 160
  EXPECT_EQ(centred.frames(1), 1u);
  config.center = false;
  const MelExtractor plain(config);
  EXPECT_EQ(plain.frames(16000), 1u + (16000u - 512u) / 160u);
  EXPECT_EQ(plain.frames(100), 0u);
  EXPECT_TRUE(plain.log_mel(std::vector<float>(100, 0.1f)).empty());
}

TEST(Mfcc, InvalidConfigNamesTheField) {
  nlohmann::json j = {{"n_mfcc", 80}, {"n_mels", 64}};
  try {
    feature_config_from_json(j, "model/config.json");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    EXPECT_NE(std::string(e.what()).find("model/config.json"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("n_mfcc"), std::string::npos);
  }
  EXPECT_THROW(feature_config_from_json({{"mel_scale", "bark"}}, "x"), Error);
  EXPECT_THROW(feature_config_from_json({{"n_fft", 256}, {"frame_length", 400}}, "x"), Error);
  EXPECT_THROW(feature_config_from_json({{"window", "hamming"}}, "x"), Error);
  // Round trip.
  FeatureConfig c;
  c.mel_scale = MelScale::htk;
  c.lifter = 22;
  const FeatureConfig back = feature_config_from_json(feature_config_to_json(c), "x");
  EXPECT_EQ(back.mel_scale, MelScale::htk);
  EXPECT_EQ(back.lifter, 22);
}

}  // namespace
}  // namespace mmfuse
