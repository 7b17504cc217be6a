#include "detect/sound_detector.h"

#include "detect/gaussian_detector.h"
#include "io/model_folder.h"
#include "mmfuse/error.h"
#include "models/registry.h"
#include "models/sound_cnn_lstm.h"

namespace mmfuse {

namespace fs = std::filesystem;

namespace {

class GaussianSoundDetector : public SoundDetector {
 public:
  explicit GaussianSoundDetector(GaussianDetector det) : det_(std::move(det)) {}
  std::string model_type() const override { return "sound_gaussian"; }
  const AudioPreprocessConfig& preprocess() const override { return det_.config().preprocess; }
  std::optional<double> threshold() const override { return det_.threshold(); }
  void set_threshold(double t) override { det_.set_threshold(t); }
  SoundVerdict judge(ThreadPool& pool, const std::vector<float>& samples,
                     const std::string& name) const override {
    const std::vector<float> frames = det_.frame_features(samples);
    MMFUSE_CHECK(!frames.empty(), bad_input, name + ": too short for one feature frame");
    SoundVerdict v;
    v.file = name;
    v.score = det_.score(pool, frames);
    v.probability = det_.anomaly_probability(v.score);
    v.anomaly = v.score >= det_.threshold();
    return v;
  }

 private:
  GaussianDetector det_;
};

class ClassifierSoundDetector : public SoundDetector {
 public:
  explicit ClassifierSoundDetector(std::unique_ptr<SoundCnnLstm> model)
      : model_(std::move(model)) {}
  std::string model_type() const override { return "sound_cnn_lstm"; }
  const AudioPreprocessConfig& preprocess() const override { return model_->config().preprocess; }
  std::optional<double> threshold() const override { return threshold_; }
  void set_threshold(double t) override { threshold_ = t; }
  SoundVerdict judge(ThreadPool& pool, const std::vector<float>& samples,
                     const std::string& name) const override {
    const SoundClassification c = model_->classify_samples(pool, samples, name);
    SoundVerdict v;
    v.file = name;
    v.score = c.anomaly_score;
    v.probability = c.anomaly_score;  // already 1 - P(normal)
    v.anomaly = threshold_ ? v.score >= *threshold_ : c.anomaly;
    v.label = c.label;
    for (size_t i = 0; i < c.probabilities.size(); ++i)
      v.probabilities.emplace_back(model_->config().labels[i], c.probabilities[i]);
    return v;
  }

 private:
  std::unique_ptr<SoundCnnLstm> model_;
  std::optional<double> threshold_;
};

}  // namespace

std::unique_ptr<SoundDetector> SoundDetector::load(const fs::path& dir) {
  const Architecture& a = architecture_with(dir, Capability::detect_sound, "judge sounds");
  if (a.open_sound_classifier)
    return std::make_unique<ClassifierSoundDetector>(a.open_sound_classifier(dir));
  // The registry's detectors without a model file: fitted Gaussians.
  return std::make_unique<GaussianSoundDetector>(GaussianDetector::load(dir));
}

SoundVerdict SoundDetector::judge_file(ThreadPool& pool, const fs::path& path) const {
  const std::vector<float> samples = load_audio(path, preprocess());
  SoundVerdict v = judge(pool, samples, path.string());
  v.seconds = static_cast<double>(samples.size()) / preprocess().sample_rate;
  return v;
}

std::vector<SoundVerdict> judge_files(const SoundDetector& detector,
                                      const std::vector<fs::path>& files, ThreadPool& pool) {
  std::vector<SoundVerdict> out(files.size());
  if (files.size() == 1) {  // one clip: let its GEMMs use the whole pool
    out[0] = detector.judge_file(pool, files[0]);
    return out;
  }
  std::vector<std::unique_ptr<ThreadPool>> serial(static_cast<size_t>(pool.size()));
  for (auto& p : serial) p = std::make_unique<ThreadPool>(1);
  pool.parallel_tasks(files.size(), [&](size_t i, int worker) {
    out[i] = detector.judge_file(*serial[static_cast<size_t>(worker)], files[i]);
  });
  return out;
}

}  // namespace mmfuse
