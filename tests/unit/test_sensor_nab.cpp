// NAB scoring (tools/nab_scorer.h): hand-computed windows, sigmoid, probation,
// the threshold sweep and normalisation; and, when ../shared/data is present,
// NAB's published numbers reproduced from its results files (skipped
// otherwise). With MMFUSE_NAB_UPSTREAM pointing at a NAB checkout (data/,
// labels/, config/, results/) the per-row results of its published detectors
// are rescored and must give its final_results.json.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "mmfuse/error.h"
#include "test_sensor_util.h"
#include "tools/nab_eval.h"
#include "tools/nab_scorer.h"

namespace mmfuse::sensor {
namespace {

double sig(double p) {  // NAB's scaled sigmoid, written out: 2 sigmoid(-5p) - 1
  return 2.0 / (1.0 + std::exp(5.0 * p)) - 1.0;
}

TEST(NabScorer, ScaledSigmoidMatchesNabsAnchors) {
  EXPECT_NEAR(nab_scaled_sigmoid(-1.0), 0.98661, 1e-5);  // left edge of a window
  EXPECT_NEAR(nab_scaled_sigmoid(-0.5), 0.84828, 1e-5);
  EXPECT_NEAR(nab_scaled_sigmoid(0.0), 0.0, 1e-15);  // right edge
  EXPECT_NEAR(nab_scaled_sigmoid(1.0), -0.98661, 1e-5);
  EXPECT_EQ(nab_scaled_sigmoid(3.5), -1.0);  // far behind a window
}

TEST(NabScorer, ProbationIsFifteenPercentCappedAt750) {
  EXPECT_EQ(nab_probation_rows(20), 3u);
  EXPECT_EQ(nab_probation_rows(4032), 604u);
  EXPECT_EQ(nab_probation_rows(22695), 750u);
}

// 20 rows, probation 3, one window on rows 10..13 (width 4).
TEST(NabScorer, HandComputedFile) {
  const NabCosts c{1.0, 0.11, 1.0, 1.0};
  std::vector<double> s(20, 0.0);
  s[1] = 1.0;   // in probation: ignored
  s[5] = 1.0;   // before the window: -A_FP
  s[11] = 1.0;  // in the window: position -(13 - 11 + 1) / 4 = -0.75
  s[12] = 1.0;  // later in the same window: does not add
  s[16] = 1.0;  // after it: |16 - 13| / (4 - 1) = 1
  size_t scored = 0;
  const auto pts = nab_points(s, {{10, 13}}, c, 0, &scored);
  ASSERT_EQ(pts.size(), 17u);
  EXPECT_EQ(scored, 1u);
  const double want = -0.11 + sig(-0.75) / sig(-1.0) + 0.11 * sig(1.0);
  const NabThresholdScore at = nab_score_at(pts, c, 0.5);
  EXPECT_NEAR(at.score, want, 1e-12);
  EXPECT_EQ(at.tp, 2u);
  EXPECT_EQ(at.fp, 2u);
  EXPECT_EQ(at.fn, 2u);   // rows 10 and 13
  EXPECT_EQ(at.tn, 11u);  // 17 scorable - 4 window rows - 2 FP
  // The sweep: nothing detected (1.1: -A_FN), then threshold 1, then 0 (all rows).
  const auto all = nab_scores_by_threshold(pts, c);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].threshold, 1.1);
  EXPECT_NEAR(all[0].score, -1.0, 1e-12);
  EXPECT_EQ(all[1].threshold, 1.0);
  EXPECT_NEAR(all[1].score, want, 1e-12);
  double every = 1.0;  // row 10 detected: a full A_TP
  for (size_t i = 3; i < 10; ++i) every -= 0.11;
  for (size_t i = 14; i < 20; ++i) every += 0.11 * sig(static_cast<double>(i - 13) / 3.0);
  EXPECT_NEAR(all[2].score, every, 1e-12);
  const NabThresholdScore best = nab_optimize_threshold(pts, c);
  EXPECT_EQ(best.threshold, want > every ? 1.0 : 0.0);
  // Normalisation: null -1, perfect +1.
  EXPECT_NEAR(nab_normalized(want, -1.0, 1.0), 100.0 * (want + 1.0) / 2.0, 1e-12);
  EXPECT_EQ(nab_normalized(-1.0, -1.0, 1.0), 0.0);
}

TEST(NabScorer, EarlierDetectionScoresMoreAndProbationWindowsDoNotCount) {
  const NabCosts c;
  std::vector<double> early(40, 0.0), late(40, 0.0);
  early[20] = 1.0;
  late[29] = 1.0;
  const std::vector<NabWindow> w = {{20, 29}};
  const double e = nab_score_at(nab_points(early, w, c, 0), c, 1.0).score;
  const double l = nab_score_at(nab_points(late, w, c, 0), c, 1.0).score;
  EXPECT_NEAR(e, 1.0, 1e-12);  // the first row of a window earns A_TP exactly
  EXPECT_NEAR(l, sig(-0.1) / sig(-1.0), 1e-12);
  EXPECT_GT(e, l);
  size_t scored = 9;
  nab_points(early, {{0, 4}}, c, 0, &scored);  // entirely within the 6 probation rows
  EXPECT_EQ(scored, 0u);
  EXPECT_THROW(nab_points(early, {{5, 50}}, c, 0), Error);
  EXPECT_THROW(nab_points(early, {{10, 20}, {15, 25}}, c, 0), Error);
}

TEST(NabScorer, RankNormalisationAveragesTies) {
  const auto r = nab_rank_normalize({3.0, 1.0, 2.0, 2.0});
  EXPECT_EQ(r, (std::vector<double>{1.0, 0.25, 0.625, 0.625}));
}

std::filesystem::path nab_dir() {
  const auto p = std::filesystem::path(MMFUSE_FIXTURES) / "../../../shared/data/sensors/nab";
  std::error_code ec;
  return std::filesystem::is_directory(p / "data", ec) ? std::filesystem::canonical(p)
                                                       : std::filesystem::path();
}

nlohmann::json read_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

// NAB's normalised scoreboard from the published per-file scores, for every
// detector and profile in results/final_results.json.
TEST(NabScorer, ReproducesThePublishedScoreboard) {
  const auto dir = nab_dir();
  if (dir.empty()) GTEST_SKIP() << "NAB data not present (../shared/data/sensors/nab)";
  const NabCorpus corpus = load_nab_corpus(dir);
  EXPECT_EQ(corpus.files.size(), 19u);
  const auto published = read_json(dir / "results/final_results.json");
  size_t checked = 0;
  for (const auto& [detector, profiles] : published.items()) {
    // final_results.json's "random" is the mean over several seeds; its
    // per-file CSVs are one seed's, so they cannot give it.
    if (detector == "random") continue;
    for (const auto& [profile, value] : profiles.items()) {
      const auto e =
          nab_scoreboard_entry(dir / "results" / detector, find_nab_profile(corpus, profile));
      EXPECT_NEAR(e.normalized, value.get<double>(), 1e-9) << detector << " " << profile;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 42u);  // 14 detectors x 3 profiles
}

// The null detector's per-file rows (score, counts) follow from the windows,
// the probation rule and the costs alone: ours must equal NAB's for every
// file we have.
TEST(NabScorer, NullDetectorPerFileRowsMatchNab) {
  const auto dir = nab_dir();
  if (dir.empty()) GTEST_SKIP() << "NAB data not present (../shared/data/sensors/nab)";
  const NabCorpus corpus = load_nab_corpus(dir);
  for (const auto& prof : corpus.profiles) {
    std::ifstream in(dir / "results/null" / ("null_" + prof.name + "_scores.csv"));
    std::map<std::string, std::vector<std::string>> rows;
    std::string line;
    while (std::getline(in, line)) {
      std::vector<std::string> f;
      std::stringstream ss(line);
      for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
      if (f.size() == 10) rows[f[2]] = f;
    }
    for (const auto& file : corpus.files) {
      ASSERT_TRUE(rows.count(file.name)) << file.name;
      const auto& f = rows[file.name];
      const std::vector<double> zeros(file.values.size(), 0.0);
      const auto pts = nab_points(zeros, file.windows, prof.costs, 0);
      const NabThresholdScore s = nab_score_at(pts, prof.costs, 0.5);
      EXPECT_DOUBLE_EQ(s.score, std::stod(f[4])) << file.name << " " << prof.name;
      EXPECT_EQ(s.tn, std::stoul(f[6])) << file.name;
      EXPECT_EQ(s.fn, std::stoul(f[8])) << file.name;
      EXPECT_EQ(file.values.size(), std::stoul(f[9])) << file.name;
    }
  }
}

// What `sensor detect` runs by default on a univariate stream (the online
// detector), scored under issue 18's protocol on the 19 files here: its
// ranked scores must stay above ARTime's 66.03 on the same files (72.10 when
// written) and its own flags above 0.9 x ARTime's 67.70 (70.78 when written).
TEST(NabScorer, DefaultDetectorBeatsArtimeOnTheFilesHere) {
  const auto dir = nab_dir();
  if (dir.empty()) GTEST_SKIP() << "NAB data not present (../shared/data/sensors/nab)";
  const NabCorpus corpus = load_nab_corpus(dir);
  const NabDetections d = nab_run_pipeline(corpus, PipelineOptions{}, 2);  // no file refused
  const NabProfile& standard = find_nab_profile(corpus, "standard");
  EXPECT_GT(nab_score(corpus, d.scores, standard, std::nullopt, /*rank_normalize=*/true).normalized,
            70.0);
  EXPECT_GT(nab_score(corpus, d.flags, standard, 0.5).normalized, 68.0);
}

// Per-row rescoring of NAB's published detectors on its whole corpus.
TEST(NabScorer, RescoresUpstreamResultsToFinalResults) {
  const char* env = std::getenv("MMFUSE_NAB_UPSTREAM");
  if (env == nullptr || *env == '\0')
    GTEST_SKIP() << "set MMFUSE_NAB_UPSTREAM to a NAB checkout to rescore its per-row results";
  const std::filesystem::path dir(env);
  const NabCorpus corpus = load_nab_corpus(dir);
  const auto published = read_json(dir / "results/final_results.json");
  for (const std::string detector : {"numenta", "ARTime", "randomCutForest", "windowedGaussian"}) {
    const NabDetections d = nab_read_results(corpus, dir / "results" / detector);
    for (const auto& prof : corpus.profiles) {
      const NabResult r = nab_score(corpus, d.scores, prof, std::nullopt);
      // NAB's own sweeper gives 63.2092 here too (threshold 0.5431); the
      // published 63.1168 comes from an older run (config/thresholds.json
      // still holds its threshold 0.5752).
      if (detector == "numenta" && prof.name == "reward_low_FP_rate") {
        EXPECT_NEAR(r.normalized, 63.209185, 1e-5);
        continue;
      }
      EXPECT_NEAR(r.normalized, published[detector][prof.name].get<double>(), 1e-6)
          << detector << " " << prof.name;
    }
  }
}

}  // namespace
}  // namespace mmfuse::sensor
