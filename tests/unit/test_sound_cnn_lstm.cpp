// The CNN+LSTM classifier against PyTorch (training/sound_cnn_lstm.py) on the
// random-weight fixtures of tests/tools/make_sound_cnn_lstm_fixtures.py: 1e-4
// on the logits, for random inputs and for a clip run end to end.
#include <gtest/gtest.h>

#include "mmfuse/error.h"
#include "models/sequence_layers.h"
#include "models/sound_cnn_lstm.h"
#include "test_util.h"

namespace mmfuse {
namespace {

using test::fixture;
using test::max_abs_diff;
using test::Reference;

class SoundCnnLstmParity : public ::testing::TestWithParam<const char*> {};

TEST_P(SoundCnnLstmParity, MatchesPytorch) {
  const std::string name = GetParam();
  const auto model = SoundCnnLstm::load(fixture("sound/cnn_lstm/" + name));
  const Reference ref(fixture("sound/cnn_lstm/" + name + "/expected.safetensors"));
  ThreadPool pool(2);
  double worst = 0.0;
  for (int i = 0; ref.has("input" + std::to_string(i)); ++i) {
    const std::vector<float> x = ref.f32("input" + std::to_string(i));
    const std::vector<int64_t> shape = ref.shape("input" + std::to_string(i));
    const std::vector<float> logits = model->forward(pool, x.data(), static_cast<size_t>(shape[0]));
    const double d = max_abs_diff(logits, ref.f32("logits" + std::to_string(i)));
    EXPECT_LE(d, 1e-4) << "input " << i << " (" << shape[0] << " frames)";
    worst = std::max(worst, d);
  }
  // End to end on a 16 kHz clip: pre-processing + MFCC + standardisation + network.
  const SoundClassification c = model->classify(pool, fixture("sound/clips/anomaly_clicks.wav"));
  const double d_clip = max_abs_diff(c.logits, ref.f32("clip.logits"));
  EXPECT_LE(d_clip, 1e-4);
  std::printf("[ SoundCnnLstm %s ] max |C++ - PyTorch| logits: %.3g (random inputs), %.3g (clip)\n",
              name.c_str(), worst, d_clip);
  float sum = 0;
  for (float p : c.probabilities) sum += p;
  EXPECT_NEAR(sum, 1.0f, 1e-5f);
  EXPECT_EQ(c.label, model->config().labels[static_cast<size_t>(c.index)]);
}

INSTANTIATE_TEST_SUITE_P(SoundCnnLstmFixtures, SoundCnnLstmParity,
                         ::testing::Values("chapter_small", "deep_mean", "bi2_final"));

TEST(SoundCnnLstm, MatchesPytorch) {
  // The headline parity check (the chapter's layout); the parameterised suite covers the rest.
  const auto model = SoundCnnLstm::load(fixture("sound/cnn_lstm/chapter_small"));
  const Reference ref(fixture("sound/cnn_lstm/chapter_small/expected.safetensors"));
  ThreadPool pool(1);
  const std::vector<float> x = ref.f32("input0");
  const auto logits = model->forward(pool, x.data(), static_cast<size_t>(ref.shape("input0")[0]));
  EXPECT_LE(max_abs_diff(logits, ref.f32("logits0")), 1e-4);
  EXPECT_EQ(model->config().labels.size(), 5u);
  EXPECT_EQ(model->config().normal_label, "normal");
}

TEST(SoundCnnLstm, FeaturesMatchNumpyChain) {
  const auto model = SoundCnnLstm::load(fixture("sound/cnn_lstm/chapter_small"));
  const Reference ref(fixture("sound/cnn_lstm/chapter_small/expected.safetensors"));
  const std::vector<float> f = model->features(
      load_audio(fixture("sound/clips/anomaly_clicks.wav"), model->config().preprocess));
  EXPECT_LE(max_abs_diff(f, ref.f32("clip.features")), 1e-4);
}

TEST(SoundCnnLstm, RejectsShortInputAndBadConfig) {
  const auto model = SoundCnnLstm::load(fixture("sound/cnn_lstm/chapter_small"));
  ThreadPool pool(1);
  std::vector<float> x(3 * 40, 0.1f);
  EXPECT_THROW(model->forward(pool, x.data(), 3), Error);
  nlohmann::json bad = read_json_file(fixture("sound/cnn_lstm/chapter_small/config.json"));
  bad["kernel_size"] = 4;
  EXPECT_THROW(parse_sound_cnn_lstm_config(bad, "cfg"), Error);
  bad["kernel_size"] = 3;
  bad["normal_label"] = "quiet";
  EXPECT_THROW(parse_sound_cnn_lstm_config(bad, "cfg"), Error);
  bad["normal_label"] = "normal";
  bad["model_type"] = "bert";
  try {
    parse_sound_cnn_lstm_config(bad, "cfg");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unsupported);
  }
  EXPECT_THROW(SoundCnnLstm::load(fixture("sound/clips")), Error);
}

TEST(SoundLayers, MaxPoolDropsTailAndConvPadsWithZeros) {
  const float x[] = {1, 5, 2, 4, 3, 9, 7};  // 7 frames, 1 channel
  EXPECT_EQ(max_pool1d(x, 7, 1, 2), (std::vector<float>{5, 4, 9}));
  const float w[] = {1, 1, 1};  // sum of 3 neighbours
  Conv1dWeights conv{w, nullptr, 1, 1, 3, 1};
  ThreadPool pool(1);
  EXPECT_EQ(conv1d(pool, x, 7, conv), (std::vector<float>{6, 8, 11, 9, 16, 19, 16}));
}

}  // namespace
}  // namespace mmfuse
