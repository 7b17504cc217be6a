// The unsupervised Gaussian detector (fit, threshold rule, save/load), the
// model-type dispatch, the evaluation metrics and DCASE name parsing, and the
// synthetic faults.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <random>

#include "audio/audio_encode.h"
#include "detect/gaussian_detector.h"
#include "detect/sound_detector.h"
#include "mmfuse/error.h"
#include "test_util.h"
#include "tools/fault_synth.h"
#include "tools/sound_eval.h"

namespace mmfuse {
namespace {

namespace fs = std::filesystem;
using test::fixture;

fs::path temp_dir(const std::string& name) {
  const fs::path dir =
      fs::temp_directory_path() / ("mmfuse_sound_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::vector<fs::path> normal_clips() {
  std::vector<fs::path> v;
  for (int i = 0; i < 4; ++i)
    v.push_back(fixture("sound/clips/normal_" + std::to_string(i) + ".wav"));
  return v;
}

TEST(SoundGaussian, AnomaliesScoreHigherAndModelRoundTrips) {
  ThreadPool pool(2);
  GaussianDetector det{GaussianDetectorConfig{}};
  const auto feats = det.features_of_files(pool, normal_clips());
  det.fit(feats);
  const Calibration cal = det.calibrate_threshold(pool, feats);
  EXPECT_EQ(cal.folds, 4u);
  EXPECT_NEAR(det.threshold(), cal.mean + 3.0 * cal.std, 1e-9);
  const auto test = det.features_of_files(
      pool, {fixture("sound/clips/normal_0.wav"), fixture("sound/clips/anomaly_whine.wav"),
             fixture("sound/clips/anomaly_clicks.wav")});
  const double normal = det.score(pool, test[0]), whine = det.score(pool, test[1]),
               clicks = det.score(pool, test[2]);
  EXPECT_LT(normal, det.threshold());
  EXPECT_GT(whine, det.threshold());
  EXPECT_GT(clicks, normal);
  // In-sample frames score about 1 per dimension on average (Mahalanobis^2 / d).
  EXPECT_NEAR(normal, 1.0, 0.5);

  const fs::path dir = temp_dir("gauss");
  det.save(dir / "model");
  det.save(dir / "model");  // overwriting an existing model works
  const GaussianDetector back = GaussianDetector::load(dir / "model");
  EXPECT_EQ(back.threshold(), det.threshold());
  EXPECT_EQ(back.config().dim(), 40);
  EXPECT_NEAR(back.score(pool, test[1]), whine, 1e-6 * whine);
  // Probabilities: the held-out Gaussian's CDF, 1 - 0.00135 at the 3-sigma
  // threshold, and the same after a round trip through config.json.
  EXPECT_NEAR(det.anomaly_probability(det.threshold()), 1.0 - 0.0013498980316300933, 1e-12);
  EXPECT_NEAR(det.anomaly_probability(cal.mean + 1.2 * cal.std), 0.88493032977829178, 1e-12);
  EXPECT_LT(det.anomaly_probability(normal), 1.0 - 0.0013498980316300933);
  EXPECT_GT(det.anomaly_probability(whine), 1.0 - 0.0013498980316300933);
  EXPECT_DOUBLE_EQ(back.anomaly_probability(whine), det.anomaly_probability(whine));
  // A folder written before probabilities existed loads with none (NaN), and a
  // malformed "calibration" is bad input naming the field.
  const fs::path config = dir / "model" / "config.json";
  std::ifstream in(config);
  nlohmann::json j = nlohmann::json::parse(in);
  in.close();
  j.erase("calibration");
  std::ofstream(config) << j.dump();
  EXPECT_TRUE(std::isnan(GaussianDetector::load(dir / "model").anomaly_probability(whine)));
  j["calibration"] = {{"mean", 1.0}, {"std", -1.0}};
  std::ofstream(config) << j.dump();
  try {
    GaussianDetector::load(dir / "model");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    EXPECT_NE(std::string(e.what()).find("calibration"), std::string::npos);
  }
  fs::remove_all(dir);
}

// scipy.stats.norm.isf(0.05) and norm.sf(3) (Debian's python3-scipy), %.17g.
TEST(SoundGaussian, SigmaForFalseAlarmRate) {
  EXPECT_NEAR(sigma_for_false_alarm_rate(0.05), 1.6448536269514729, 1e-9);
  EXPECT_NEAR(false_alarm_rate_for_sigma(3.0), 0.0013498980316300933, 1e-15);
  EXPECT_NEAR(sigma_for_false_alarm_rate(0.0013498980316300933), 3.0, 1e-9);
  EXPECT_NEAR(sigma_for_false_alarm_rate(0.5), 0.0, 1e-9);
  EXPECT_THROW(sigma_for_false_alarm_rate(0.0), Error);
  EXPECT_THROW(sigma_for_false_alarm_rate(0.7), Error);
}

TEST(SoundGaussian, SingleClipCalibratesOnHalvesAndRejectsSilence) {
  ThreadPool pool(1);
  GaussianDetector det{GaussianDetectorConfig{}};
  const auto feats = det.features_of_files(pool, {fixture("sound/clips/normal_1.wav")});
  det.fit(feats);
  const Calibration cal = det.calibrate_threshold(pool, feats);
  EXPECT_EQ(cal.folds, 2u);
  EXPECT_GT(det.threshold(), 0.0);
  // Digital silence (all frames equal) cannot be fitted: a clear error, not NaNs.
  GaussianDetectorConfig config;
  config.shrinkage = 1e-9;
  config.features.pre_emphasis = 0.0;
  GaussianDetector flat(config);
  const std::vector<float> silent = flat.frame_features(std::vector<float>(16000, 0.0f));
  EXPECT_THROW(flat.fit({silent}), Error);
}

TEST(SoundDetector, LoadsBothModelTypesAndRejectsOthers) {
  ThreadPool pool(2);
  const auto cnn = SoundDetector::load(fixture("sound/cnn_lstm/chapter_small"));
  EXPECT_EQ(cnn->model_type(), "sound_cnn_lstm");
  EXPECT_FALSE(cnn->threshold().has_value());
  const auto verdicts = judge_files(
      *cnn, {fixture("sound/clips/normal_0.wav"), fixture("sound/clips/normal_1.wav")}, pool);
  ASSERT_EQ(verdicts.size(), 2u);
  EXPECT_EQ(verdicts[0].probabilities.size(), 5u);
  EXPECT_EQ(verdicts[0].anomaly, verdicts[0].label != "normal");
  try {
    SoundDetector::load(fixture("clip/models/clip-tiny-quickgelu-p32"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unsupported);
    EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos);
  }
  EXPECT_THROW(SoundDetector::load(fixture("sound/nope")), Error);
}

TEST(SoundEval, RocAucAndF1) {
  EXPECT_DOUBLE_EQ(roc_auc({0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}), 0.75);  // sklearn's example
  EXPECT_DOUBLE_EQ(roc_auc({1, 1, 1, 1}, {0, 1, 0, 1}), 0.5);            // ties count half
  EXPECT_DOUBLE_EQ(roc_auc({3, 2, 1}, {1, 0, 0}), 1.0);
  EXPECT_TRUE(std::isnan(roc_auc({1, 2}, {0, 0})));
  const BinaryCounts c = count_predictions({0.1, 0.5, 0.7, 0.9}, {0, 1, 0, 1}, 0.5);
  EXPECT_EQ(c.tp, 2u);
  EXPECT_EQ(c.fp, 1u);
  EXPECT_EQ(c.fn, 0u);
  EXPECT_NEAR(c.f1(), 0.8, 1e-12);
}

// Expected values from Debian's python3-sklearn 1.2.1 (/usr/bin/python3):
// sklearn.metrics.roc_auc_score(y, s) and roc_auc_score(y, s, max_fpr=p), and
// scipy.stats.hmean, printed with %.17g on the arrays below.
TEST(SoundEval, AucAndPartialAucMatchSklearn) {
  const std::vector<int> ties_y = {0, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 0};
  const std::vector<double> ties_s = {0.1, 0.4, 0.35, 0.8, 0.4, 0.9, 0.2, 0.4, 0.05, 0.6, 0.7, 0.3};
  EXPECT_NEAR(roc_auc(ties_s, ties_y), 0.8571428571428571, 1e-12);
  EXPECT_NEAR(partial_roc_auc(ties_s, ties_y, 0.1), 0.78947368421052633, 1e-12);
  EXPECT_NEAR(partial_roc_auc(ties_s, ties_y, 0.3), 0.78165266106442566, 1e-12);
  EXPECT_NEAR(partial_roc_auc(ties_s, ties_y, 1.0), 0.8571428571428571, 1e-12);
  // numpy RandomState(7): y = rand(40) < 0.3, s = round(randn(40) + 0.8 y, 1).
  const std::vector<int> y40 = {1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1, 0, 0, 1,
                                0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  const std::vector<double> s40 = {-1.3, -0.7, -1.2, 1.5,  1.8,  -0.3, 0.8,  0.6,  1.4,  -0.8,
                                   -1.7, -1.8, 0.4,  3.0,  1.1,  -0.5, 2.7,  0.2,  0.1,  1.1,
                                   -0.1, -0.3, -0.6, 0.5,  -0.1, 2.0,  -0.4, -1.9, -0.1, 1.7,
                                   0.4,  -0.9, -1.2, -1.1, -0.3, -1.2, 1.5,  -0.3, 0.1,  2.2};
  EXPECT_NEAR(roc_auc(s40, y40), 0.78526645768025072, 1e-12);
  EXPECT_NEAR(partial_roc_auc(s40, y40, 0.1), 0.66507177033492826, 1e-12);
  EXPECT_NEAR(partial_roc_auc(s40, y40, 0.3), 0.74860163501137134, 1e-12);
  // One clip per class (the shared DCASE sample's test pairs): right and wrong order.
  EXPECT_NEAR(partial_roc_auc({0.2, 0.7}, {0, 1}, 0.1), 1.0, 1e-12);
  EXPECT_NEAR(partial_roc_auc({0.7, 0.2}, {0, 1}, 0.1), 0.47368421052631576, 1e-12);
  EXPECT_NEAR(partial_roc_auc({0.5, 0.5, 0.5, 0.5}, {0, 1, 0, 1}, 0.1), 0.5, 1e-12);
  EXPECT_TRUE(std::isnan(partial_roc_auc({1, 2}, {1, 1}, 0.1)));
  EXPECT_NEAR(harmonic_mean({0.9, 0.6, 0.75, 0.55}), 0.67461669505962529, 1e-12);
  EXPECT_EQ(harmonic_mean({0.9, 0.0}), 0.0);
  EXPECT_TRUE(std::isnan(harmonic_mean({})));
}

TEST(SoundEval, ParsesDcaseNames) {
  const fs::path root = temp_dir("dcase");
  fs::create_directories(root / "fan");
  fs::create_directories(root / "valve" / "test");
  const fs::path src = fixture("sound/clips/normal_0.wav");
  fs::copy(src, root / "fan" / "fan_train_section_00_source_train_normal_0040_m-n_X.wav");
  fs::copy(src, root / "fan" / "fan_test_section_00_target_test_normal_0021_m-n_Y.wav");
  fs::copy(src, root / "fan" / "fan_test_section_00_source_test_anomaly_0022_m-n_W.wav");
  fs::copy(src, root / "valve" / "test" / "section_00_source_test_anomaly_0001.wav");
  const auto clips = scan_dcase_folder(root);
  ASSERT_EQ(clips.size(), 2u);
  const auto& fan = clips.at("fan");
  ASSERT_EQ(fan.size(), 3u);
  int train = 0, anomalies = 0;
  for (const auto& c : fan) {
    train += c.train;
    anomalies += c.anomaly;
    if (c.anomaly) {
      EXPECT_EQ(c.domain, "source");
    }
  }
  EXPECT_EQ(train, 1);
  EXPECT_EQ(anomalies, 1);
  EXPECT_TRUE(clips.at("valve")[0].anomaly);
  EXPECT_FALSE(clips.at("valve")[0].train);
  fs::copy(src, root / "fan" / "unnamed.wav");
  try {
    scan_dcase_folder(root);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unnamed.wav"), std::string::npos);
  }
  fs::remove_all(root);
}

TEST(SoundEval, SharedDcaseSample) {
  const fs::path root = fs::path(MMFUSE_FIXTURES) / "../../../shared/data/audio/dcase2023_task2";
  if (!fs::exists(root)) GTEST_SKIP() << "shared data not present: " << root;
  ThreadPool pool(2);
  const auto results = evaluate_sound_detector(scan_dcase_folder(root), GaussianDetectorConfig{},
                                               EvalOptions{}, pool);
  ASSERT_EQ(results.size(), 7u);
  size_t with_test = 0;
  for (const auto& r : results) {
    EXPECT_EQ(r.train_clips, 2u) << r.machine;
    if (r.test_normal + r.test_anomaly == 0) continue;
    ++with_test;
    EXPECT_GT(r.threshold, 0.0);
    // 1 normal + 1 anomaly: AUC is 0 or 1 and pAUC(0.1) then 0.474 or 1.
    EXPECT_NEAR(r.pauc, r.auc == 1.0 ? 1.0 : 0.47368421052631576, 1e-12) << r.machine;
    // The three test normals are target-domain clips (PROVENANCE.md): no
    // source-domain AUC, and the target one is the whole pair's.
    EXPECT_TRUE(std::isnan(r.auc_source)) << r.machine;
    EXPECT_EQ(r.auc_target, r.auc) << r.machine;
    std::printf("[ SoundEval ] %-9s AUC %.2f pAUC %.3f F1 %.2f (1 normal + 1 anomaly)\n",
                r.machine.c_str(), r.auc, r.pauc, r.counts.f1());
  }
  EXPECT_EQ(with_test, 3u);  // ToyTrain, fan, valve
}

TEST(SoundFaults, DeterministicAndAtDocumentedLevels) {
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0.0f, 0.1f);
  std::vector<float> x(32000);
  for (float& v : x) v = n(rng);
  for (SyntheticFault f : all_synthetic_faults()) {
    const auto a = inject_fault(x, 16000, f, 7), b = inject_fault(x, 16000, f, 7);
    EXPECT_EQ(a, b) << to_string(f);
    EXPECT_NE(a, x) << to_string(f);
  }
  // The tone and the noise add 0.3 x the clip RMS (powers add: sqrt(1 + 0.09)).
  auto rms = [](const std::vector<float>& v) {
    double s = 0;
    for (float e : v) s += static_cast<double>(e) * e;
    return std::sqrt(s / static_cast<double>(v.size()));
  };
  EXPECT_NEAR(rms(inject_fault(x, 16000, SyntheticFault::tone, 1)) / rms(x), std::sqrt(1.09), 0.01);
  EXPECT_NEAR(rms(inject_fault(x, 16000, SyntheticFault::noise, 1)) / rms(x), std::sqrt(1.09),
              0.01);
}

}  // namespace
}  // namespace mmfuse
