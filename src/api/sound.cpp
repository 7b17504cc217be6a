// mmfuse::SoundModel (the public API) on top of detect/sound_detector: the
// numbers `mmfuse sound detect` prints.
#include "mmfuse/sound.h"

#include <filesystem>

#include "audio/audio_decode.h"
#include "audio/audio_preprocess.h"
#include "core/thread_pool.h"
#include "detect/sound_detector.h"

namespace mmfuse {

namespace {

SoundResult to_result(SoundVerdict&& v) {
  SoundResult r;
  r.score = v.score;
  r.probability = v.probability;
  r.anomaly = v.anomaly;
  r.seconds = v.seconds;
  r.label = std::move(v.label);
  r.probabilities = std::move(v.probabilities);
  return r;
}

class DetectorSoundModel final : public SoundModel {
 public:
  DetectorSoundModel(std::unique_ptr<SoundDetector> detector, std::shared_ptr<ThreadPool> pool)
      : detector_(std::move(detector)), pool_(std::move(pool)) {}

  std::string model_type() const override { return detector_->model_type(); }
  int sample_rate() const override { return detector_->preprocess().sample_rate; }
  std::optional<double> threshold() const override { return detector_->threshold(); }
  void set_threshold(double threshold) override { detector_->set_threshold(threshold); }

  SoundResult judge_file(const std::string& audio_path) override {
    return to_result(detector_->judge_file(*pool_, audio_path));
  }

  SoundResult judge(const std::vector<float>& samples, int rate) override {
    MMFUSE_CHECK(rate > 0, bad_input,
                 "sample_rate " + std::to_string(rate) + " must be a positive number of Hz");
    AudioClip clip;
    clip.samples = samples;
    clip.sample_rate = rate;
    clip.source_channels = 1;
    clip.source_format = "samples";
    const std::vector<float> pre = preprocess_audio(clip, detector_->preprocess(), "samples");
    SoundVerdict v = detector_->judge(*pool_, pre, "samples");
    v.seconds = static_cast<double>(pre.size()) / detector_->preprocess().sample_rate;
    return to_result(std::move(v));
  }

  std::vector<SoundResult> judge_files(const std::vector<std::string>& audio_paths) override {
    const std::vector<std::filesystem::path> files(audio_paths.begin(), audio_paths.end());
    std::vector<SoundResult> out;
    out.reserve(files.size());
    for (SoundVerdict& v : mmfuse::judge_files(*detector_, files, *pool_))
      out.push_back(to_result(std::move(v)));
    return out;
  }

 private:
  std::unique_ptr<SoundDetector> detector_;
  std::shared_ptr<ThreadPool> pool_;
};

}  // namespace

std::unique_ptr<SoundModel> SoundModel::open(const std::string& model_dir, int threads) {
  return open(model_dir, std::make_shared<ThreadPool>(threads));
}

std::unique_ptr<SoundModel> SoundModel::open(const std::string& model_dir,
                                             std::shared_ptr<ThreadPool> pool) {
  MMFUSE_CHECK(pool != nullptr, bad_input, model_dir + ": no thread pool given");
  return std::make_unique<DetectorSoundModel>(SoundDetector::load(model_dir), std::move(pool));
}

}  // namespace mmfuse
