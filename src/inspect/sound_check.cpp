// Sound modality: fit-or-load of the per-point Gaussian detector and judging.
#include "inspect/sound_check.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "audio/audio_files.h"
#include "mmfuse/error.h"

namespace mmfuse::inspect {

namespace fs = std::filesystem;

namespace {

// Identifies the baseline: every file's path, size and modification time, and the settings.
std::string baseline_key(const std::vector<fs::path>& files, const SoundConfig& config) {
  std::string text = "sound-v1 sigma=" + std::to_string(config.threshold_sigma) + "\n";
  for (const fs::path& f : files) {
    std::error_code ec;
    const auto size = fs::file_size(f, ec);
    const auto time = fs::last_write_time(f, ec).time_since_epoch().count();
    text += f.string() + "|" + std::to_string(size) + "|" + std::to_string(time) + "\n";
  }
  return text;
}

}  // namespace

SoundCheck::SoundCheck(const SoundConfig& config, const fs::path& cache_dir, ThreadPool& pool) {
  std::vector<std::string> inputs;
  for (const fs::path& p : config.baseline) inputs.push_back(p.string());
  const std::vector<fs::path> files = collect_audio_files(inputs, "sound baseline");
  const std::string key = baseline_key(files, config);
  if (!cache_dir.empty() && fs::exists(cache_dir / "config.json")) {
    try {
      std::ifstream in(cache_dir / "config.json");
      const nlohmann::json j = nlohmann::json::parse(in);
      if (j.value("baseline_key", std::string()) == key) {
        det_ = std::make_shared<GaussianDetector>(GaussianDetector::load(cache_dir));
        from_cache_ = true;
        return;
      }
    } catch (const std::exception&) {
      // A damaged cache is refitted below, never trusted.
    }
  }
  GaussianDetectorConfig gc;
  gc.threshold_sigma = config.threshold_sigma;
  det_ = std::make_shared<GaussianDetector>(gc);
  const auto feats = det_->features_of_files(pool, files);
  det_->fit(feats);
  det_->calibrate_threshold(pool, feats);
  if (!cache_dir.empty()) {
    fs::create_directories(cache_dir.parent_path());
    det_->save(cache_dir, {{"baseline_key", key}, {"normal_clips", files.size()}});
  }
}

SoundFinding SoundCheck::judge(const std::string& bytes, const std::string& name) const {
  const AudioClip clip =
      decode_audio_memory(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), name);
  const std::vector<float> samples = preprocess_audio(clip, det_->config().preprocess, name);
  const std::vector<float> frames = det_->frame_features(samples);
  MMFUSE_CHECK(!frames.empty(), bad_input, "sound '" + name + "': too short after silence removal");
  ThreadPool single(1);
  SoundFinding f;
  f.score = det_->score(single, frames);
  f.threshold = det_->threshold();
  f.anomaly = f.score >= f.threshold;
  f.seconds = static_cast<double>(samples.size()) / det_->config().preprocess.sample_rate;
  return f;
}

}  // namespace mmfuse::inspect
