// Unsupervised sound anomaly detector fitted on normal recordings only (plants
// rarely have labelled faults): a multivariate Gaussian over per-frame
// features (the chapter's MFCC-40 by default, or log-mel; optionally with
// neighbouring frames stacked),
// with the covariance shrunk towards a scaled identity so that a few clips
// suffice. A clip's score is the mean over its frames of the squared
// Mahalanobis distance divided by the feature dimension (~1 for frames like
// the training data). The alarm threshold is set from held-out normal scores
// (see calibrate_threshold), and a score becomes an anomaly probability
// against the same held-out distribution (see anomaly_probability). Saved as a model folder:
// config.json (model_type "sound_gaussian") + model.safetensors (mean, precision).
#pragma once

#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "audio/audio_preprocess.h"
#include "audio/feature_config.h"
#include "audio/mel_features.h"
#include "core/thread_pool.h"

namespace mmfuse {

enum class FrameFeature { log_mel, mfcc };

// The DCASE 2020-2023 baseline front end (64 ms frames, 32 ms hop, 128 mel
// bands, no pre-emphasis, no dB floor), used with FrameFeature::log_mel.
FeatureConfig dcase_log_mel_features();

struct GaussianDetectorConfig {
  AudioPreprocessConfig preprocess;  // peak normalisation, edge silence trimmed
  FeatureConfig features;            // the chapter's MFCC-40 front end (25 ms / 10 ms)
  FrameFeature feature = FrameFeature::mfcc;
  int context = 1;                     // frames stacked into one vector (t .. t + context - 1)
  bool clip_mean_norm = false;         // subtract each clip's mean feature vector first
  double shrinkage = 0.1;              // C <- (1 - s) C + s (trace(C) / d) I
  double threshold_sigma = 3.0;        // threshold = mean + sigma * std of held-out scores
                                       // (3 = a false-alarm rate of 0.135 % per segment)
  double calibration_segment_s = 2.0;  // held-out normal clips are scored in segments this long
  int max_folds = 5;

  int dim() const;  // feature dimension after stacking
};

nlohmann::json gaussian_config_to_json(const GaussianDetectorConfig& c);
GaussianDetectorConfig gaussian_config_from_json(const nlohmann::json& j, const std::string& where);

// sigma with P(Z >= sigma) = rate for a standard normal Z: the threshold_sigma
// for a target false-alarm rate in (0, 0.5].
double sigma_for_false_alarm_rate(double rate);
// The inverse: P(Z >= sigma).
double false_alarm_rate_for_sigma(double sigma);

// How the threshold was chosen (reported by `mmfuse sound fit`).
struct Calibration {
  size_t folds = 0;
  size_t segments = 0;           // held-out segments scored
  double mean = 0.0, std = 0.0;  // of their scores
  double max = 0.0;
};

class GaussianDetector {
 public:
  explicit GaussianDetector(GaussianDetectorConfig config);

  const GaussianDetectorConfig& config() const { return config_; }
  const MelExtractor& extractor() const { return *mel_; }

  // Pre-processed samples -> frame vectors [rows, dim] (after clip-mean
  // normalisation and stacking). Thread-safe.
  std::vector<float> frame_features(const std::vector<float>& samples) const;
  // decode -> pre-process -> frame_features for every file, one file per core
  // of `pool`; the first bad file's error is thrown.
  std::vector<std::vector<float>> features_of_files(
      ThreadPool& pool, const std::vector<std::filesystem::path>& files) const;

  // Fits mean and precision on the frames of all clips (each [rows_i, dim]).
  void fit(const std::vector<std::vector<float>>& clips);
  // k-fold over clips (k = min(clips, max_folds); one clip is split in two):
  // refits on the other folds, scores each held-out clip in segments of
  // calibration_segment_s, and sets threshold = mean + threshold_sigma * std
  // of those scores. Call before or after fit(); it leaves the fit untouched.
  Calibration calibrate_threshold(ThreadPool& pool, const std::vector<std::vector<float>>& clips);

  // Per-frame scores of frames [rows, dim] (Mahalanobis^2 / dim). Thread-safe.
  std::vector<float> frame_scores(ThreadPool& pool, const std::vector<float>& frames) const;
  // Mean frame score.
  double score(ThreadPool& pool, const std::vector<float>& frames) const;

  // HTM's anomaly likelihood for a clip score: L = P(Z <= (score - mean) / std)
  // with mean and std of the held-out normal segment scores calibrate_threshold
  // saw, so score >= threshold exactly when L >= 1 - the target false-alarm
  // rate (with the threshold of the calibration). NaN for a model folder
  // written before the calibration was saved.
  double anomaly_probability(double score) const;

  double threshold() const { return threshold_; }
  void set_threshold(double t) { threshold_ = t; }
  bool fitted() const { return !mean_.empty(); }
  size_t training_frames() const { return training_frames_; }

  void save(const std::filesystem::path& dir, const nlohmann::json& extra = {}) const;
  static GaussianDetector load(const std::filesystem::path& dir);

 private:
  struct Moments {
    std::vector<double> mean, precision;
  };
  Moments estimate(const std::vector<const std::vector<float>*>& clips) const;
  static std::vector<float> scores_with(ThreadPool& pool, const std::vector<float>& frames,
                                        const std::vector<float>& mean,
                                        const std::vector<float>& precision, int dim);

  GaussianDetectorConfig config_;
  std::shared_ptr<MelExtractor> mel_;
  std::vector<float> mean_;       // dim
  std::vector<float> precision_;  // dim * dim, symmetric
  double threshold_ = 0.0;
  double calibration_mean_ = std::numeric_limits<double>::quiet_NaN();
  double calibration_std_ = std::numeric_limits<double>::quiet_NaN();
  size_t training_frames_ = 0;
};

}  // namespace mmfuse
