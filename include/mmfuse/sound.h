// mmfuse public API: sound anomaly detection (the inspection robot's sound
// check) with a sound model folder: "sound_gaussian" (unsupervised, fitted on
// normal clips by `mmfuse sound fit`) or "sound_cnn_lstm" (the chapter's
// MFCC-40 CNN+LSTM classifier, trained by training/train_sound.py). Gives the
// numbers `mmfuse sound detect` prints.
//
//   auto model = mmfuse::SoundModel::open("models/pump-sound");
//   mmfuse::SoundResult r = model->judge_file("pump_0001.wav");
//   if (r.anomaly) alarm(r.score);
//
// Thread-safety: any number of threads may call judge_file() / judge() /
// judge_files() on the same SoundModel (or on different ones) at once;
// results do not depend on who else is computing. The model is read-only
// after open() (set_threshold() aside) and computes on its own ThreadPool
// (or one it was handed), which runs one caller's loop at a time.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mmfuse/error.h"
#include "mmfuse/export.h"
#include "mmfuse/thread_pool.h"

namespace mmfuse {

struct SoundResult {
  double score = 0.0;  // larger = more anomalous
  // Anomaly probability in [0, 1]: sound_gaussian, HTM's likelihood of the
  // score against held-out normal scores (>= 1 - the target false-alarm rate
  // exactly when score >= the fitted threshold; NaN for model folders written
  // before it was saved); sound_cnn_lstm, 1 - P(normal label).
  double probability = 0.0;
  bool anomaly = false;
  // Seconds of audio judged: after resampling to the model's rate and
  // removing leading/trailing silence (when the model's folder asks for it).
  double seconds = 0.0;
  // Classifier (sound_cnn_lstm) only: the predicted class and every class's
  // probability, in the model's class order; empty for sound_gaussian.
  std::string label;
  std::vector<std::pair<std::string, float>> probabilities;
};

class MMFUSE_API SoundModel {
 public:
  virtual ~SoundModel() = default;

  // Opens a sound model folder (config.json with model_type "sound_gaussian"
  // or "sound_cnn_lstm", and its weights). The model owns a pool of `threads`
  // cores (0 = all cores). Throws mmfuse::Error: not_found (no folder /
  // config.json), unsupported (another model_type), bad_input (a bad file,
  // naming it and the field).
  static std::unique_ptr<SoundModel> open(const std::string& model_dir, int threads = 0);
  // The same, computing on `pool`, which several models may share.
  static std::unique_ptr<SoundModel> open(const std::string& model_dir,
                                          std::shared_ptr<ThreadPool> pool);

  virtual std::string model_type() const = 0;  // "sound_gaussian" or "sound_cnn_lstm"
  virtual int sample_rate() const = 0;         // Hz clips are resampled to
  // The score at or above which a clip is an anomaly; none when the decision
  // is the classifier's (predicted class != the normal class).
  virtual std::optional<double> threshold() const = 0;
  // Replaces the threshold (a classifier then decides by score >= threshold).
  // Not to be called while other threads judge with this model.
  virtual void set_threshold(double threshold) = 0;

  // Judges an audio file (any format libsndfile reads, any rate, mixed down
  // to mono; normalised and trimmed as the model's folder says). Throws
  // not_found for a missing file, bad_input for an unreadable or empty clip.
  virtual SoundResult judge_file(const std::string& audio_path) = 0;
  // The same from mono samples (floats in [-1, 1]) at `sample_rate` Hz.
  virtual SoundResult judge(const std::vector<float>& samples, int sample_rate) = 0;
  // Judges many files, one clip per core of the model's pool; results in
  // input order. The first bad file's error is thrown.
  virtual std::vector<SoundResult> judge_files(const std::vector<std::string>& audio_paths) = 0;
};

}  // namespace mmfuse
