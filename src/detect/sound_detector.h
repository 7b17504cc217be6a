// One interface over the two kinds of sound model, chosen by config.json's
// model_type: "sound_gaussian" (unsupervised, fitted on normal clips) and
// "sound_cnn_lstm" (the chapter's supervised classifier). Both turn a clip
// into a score and an anomaly decision; `mmfuse sound detect` prints them.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "audio/audio_preprocess.h"
#include "core/thread_pool.h"

namespace mmfuse {

struct SoundVerdict {
  std::string file;
  double score = 0.0;  // larger = more anomalous
  double probability = 0.0;  // anomaly probability (see SoundResult in mmfuse/sound.h)
  bool anomaly = false;
  double seconds = 0.0;  // audio judged, after silence removal
  // Classifier only: the predicted class and the class probabilities.
  std::string label;
  std::vector<std::pair<std::string, float>> probabilities;
};

class SoundDetector {
 public:
  static std::unique_ptr<SoundDetector> load(const std::filesystem::path& dir);
  virtual ~SoundDetector() = default;

  virtual std::string model_type() const = 0;
  virtual const AudioPreprocessConfig& preprocess() const = 0;
  // The score at or above which a clip is an anomaly; none when the decision is
  // the classifier's argmax (predicted class != normal, as the chapter does).
  virtual std::optional<double> threshold() const = 0;
  virtual void set_threshold(double threshold) = 0;
  // Judges pre-processed samples. Thread-safe; `pool` runs this clip's GEMMs.
  virtual SoundVerdict judge(ThreadPool& pool, const std::vector<float>& samples,
                             const std::string& name) const = 0;

  SoundVerdict judge_file(ThreadPool& pool, const std::filesystem::path& path) const;
};

// Judges every file, one clip per core of `pool` (each clip single-threaded,
// so --threads N means N busy cores). Results in input order; the first bad
// file's error is thrown.
std::vector<SoundVerdict> judge_files(const SoundDetector& detector,
                                      const std::vector<std::filesystem::path>& files,
                                      ThreadPool& pool);

}  // namespace mmfuse
