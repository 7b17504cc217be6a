// The chapter's weighted late fusion (section 6.3.3) checked case by case,
// including missing and unreadable modalities, the score-level variant and
// the head factory.
#include <gtest/gtest.h>

#include "fusion/fusion.h"
#include "mmfuse/error.h"

namespace mmfuse::fusion {
namespace {

using inspect::ModalityStatus;

// 'A' anomaly, 'o' ok, '-' missing, 'E' error, per camera, infrared, sound, sensors.
std::vector<ModalityResult> results(const char* code, std::array<double, 4> scores = {}) {
  std::vector<ModalityResult> out;
  for (size_t i = 0; i < 4; ++i) {
    ModalityResult r;
    r.modality = inspect::kAllModalities[i];
    r.status = code[i] == 'A'   ? ModalityStatus::anomaly
               : code[i] == 'o' ? ModalityStatus::ok
               : code[i] == 'E' ? ModalityStatus::error
                                : ModalityStatus::missing;
    r.decision = code[i] == 'A';
    r.score = scores[i];
    out.push_back(r);
  }
  return out;
}

struct VoteCase {
  const char* code;
  double score;
  bool alarm;
  const char* type;
};

TEST(Fusion, WeightedVoteMatchesTheChapterRule) {
  // Chapter: score = 0.4 image + 0.3 temperature + 0.2 audio + 0.1 sensor (each 0/1); alarm at >=
  // 0.3.
  const VoteCase cases[] = {
      {"oooo", 0.0, false, ""},
      {"Aooo", 0.4, true, "camera"},
      {"oAoo", 0.3, true, "infrared"},
      {"ooAo", 0.2, false, ""},
      {"oooA", 0.1, false, ""},
      {"ooAA", 0.3, true, "sound"},
      {"AAoo", 0.7, true, "camera"},
      {"oAAA", 0.6, true, "infrared"},
      {"AAAA", 1.0, true, "camera"},
      {"AooA", 0.5, true, "camera"},
      // Missing or unreadable modalities do not vote; the others keep their weights.
      {"-AAo", 0.5, true, "infrared"},
      {"--Ao", 0.2, false, ""},
      {"E-AA", 0.3, true, "sound"},
      {"----", 0.0, false, ""},
      {"EEEA", 0.1, false, ""},
  };
  const auto head = make_fusion_head(FusionConfig{});
  EXPECT_EQ(head->name(), "weighted_vote");
  for (const VoteCase& c : cases) {
    const FusionResult r = head->fuse(results(c.code));
    EXPECT_NEAR(r.score, c.score, 1e-12) << c.code;
    EXPECT_EQ(r.alarm, c.alarm) << c.code;
    EXPECT_EQ(r.alarm_type, c.type) << c.code;
  }
}

TEST(Fusion, MissingModalitiesAreListedAndPresentWeightReported) {
  const auto head = make_fusion_head(FusionConfig{});
  // Camera missing, infrared anomalous, sound unreadable, sensors missing.
  const FusionResult r = head->fuse(results("-AE-"));
  EXPECT_EQ(r.missing.size(), 3u);
  EXPECT_NEAR(r.present_weight, 0.3, 1e-12);
  // A modality absent from the list altogether counts as missing too.
  std::vector<ModalityResult> only_ir = {results("oAoo")[1]};
  const FusionResult r2 = head->fuse(only_ir);
  EXPECT_EQ(r2.missing.size(), 3u);
  EXPECT_TRUE(r2.alarm);
}

TEST(Fusion, RenormalisationIsOptional) {
  FusionConfig c;
  c.renormalize = true;
  const auto head = make_fusion_head(c);
  // Camera and infrared missing: sound alone carries 0.2 / 0.3 of the present weight.
  const FusionResult r = head->fuse(results("--Ao"));
  EXPECT_NEAR(r.score, 0.2 / 0.3, 1e-12);
  EXPECT_TRUE(r.alarm);
  // With everything present renormalisation changes nothing.
  EXPECT_NEAR(head->fuse(results("ooAo")).score, 0.2, 1e-12);
  EXPECT_FALSE(head->fuse(results("----")).alarm);
}

TEST(Fusion, WeightedScoreUsesCalibratedScores) {
  FusionConfig c;
  c.rule = "weighted_score";
  const auto head = make_fusion_head(c);
  EXPECT_EQ(head->name(), "weighted_score");
  // 0.4*0.5 = 0.2: a camera exactly at its threshold alone does not alarm.
  FusionResult r = head->fuse(results("Aooo", {0.5, 0.0, 0.0, 0.0}));
  EXPECT_NEAR(r.score, 0.2, 1e-12);
  EXPECT_FALSE(r.alarm);
  // 0.4*0.9 + 0.3*0.6 + 0.2*0.1 + 0.1*0.2 = 0.58
  r = head->fuse(results("AAoo", {0.9, 0.6, 0.1, 0.2}));
  EXPECT_NEAR(r.score, 0.58, 1e-12);
  EXPECT_TRUE(r.alarm);
  EXPECT_EQ(r.alarm_type, "camera");
  // A missing modality's score is ignored whatever it holds.
  r = head->fuse(results("-ooo", {1.0, 0.1, 0.1, 0.1}));
  EXPECT_NEAR(r.score, 0.06, 1e-12);
  // Scores outside [0, 1] are refused.
  EXPECT_THROW(head->fuse(results("Aooo", {1.5, 0, 0, 0})), Error);
}

TEST(Fusion, CustomWeightsAndThreshold) {
  FusionConfig c;
  c.weights = {0.25, 0.25, 0.25, 0.25};
  c.threshold = 0.5;
  const auto head = make_fusion_head(c);
  EXPECT_FALSE(head->fuse(results("Aooo")).alarm);
  EXPECT_TRUE(head->fuse(results("AooA")).alarm);
}

TEST(Fusion, FactoryAndValidation) {
  FusionConfig c;
  c.rule = "attention";
  try {
    make_fusion_head(c);
    FAIL() << "attention head must need weights";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unsupported);
  }
  c.rule = "majority";
  EXPECT_THROW(make_fusion_head(c), Error);
  c = FusionConfig{};
  c.weights = {0, 0, 0, 0};
  EXPECT_THROW(make_fusion_head(c), Error);
  c = FusionConfig{};
  c.threshold = 0.0;
  EXPECT_THROW(make_fusion_head(c), Error);
  // The same modality twice is a caller bug reported as bad input.
  auto twice = results("Aooo");
  twice.push_back(twice[0]);
  EXPECT_THROW(make_fusion_head(FusionConfig{})->fuse(twice), Error);
}

TEST(Fusion, CalibrateRatio) {
  EXPECT_DOUBLE_EQ(calibrate_ratio(0.0), 0.0);
  EXPECT_DOUBLE_EQ(calibrate_ratio(1.0), 0.5);
  EXPECT_DOUBLE_EQ(calibrate_ratio(3.0), 0.75);
  EXPECT_DOUBLE_EQ(calibrate_ratio(-2.0), 0.0);
  EXPECT_DOUBLE_EQ(calibrate_ratio(std::numeric_limits<double>::infinity()), 1.0);
  EXPECT_DOUBLE_EQ(calibrate_ratio(std::nan("")), 0.0);
}

}  // namespace
}  // namespace mmfuse::fusion
