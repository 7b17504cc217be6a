// The chapter's CNN+LSTM sound classifier (section 6.3.2): MFCC-40 frames ->
// [Conv1d -> ReLU -> MaxPool1d] x N -> (bi)LSTM -> one vector per clip -> Linear
// to the classes (5 in the chapter: normal running, abnormal noise, alarm, ...).
// Loads a folder written by training/sound_cnn_lstm.py's save_pretrained:
// config.json (geometry, labels, feature and pre-processing settings) and
// model.safetensors with the PyTorch state_dict names (cnn.0.weight,
// lstm.weight_ih_l0, fc.weight, ...). Matches PyTorch within 1e-4.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "audio/audio_preprocess.h"
#include "audio/feature_config.h"
#include "audio/mel_features.h"
#include "core/thread_pool.h"
#include "io/model_folder.h"
#include "models/sequence_layers.h"

namespace mmfuse {

enum class SequencePooling { last, final_state, mean };

struct SoundCnnLstmConfig {
  int input_dim = 40;
  std::vector<int> conv_channels = {64, 128};
  int kernel_size = 3;
  int pool_size = 2;
  int hidden_dim = 128;
  int num_layers = 1;
  bool bidirectional = true;
  SequencePooling pooling = SequencePooling::last;
  int num_classes = 5;
  std::vector<std::string> labels;
  std::string normal_label = "normal";
  bool standardize_per_clip = true;
  FeatureConfig features;
  AudioPreprocessConfig preprocess;
};

// Parses and validates config.json; errors name `where` and the field.
SoundCnnLstmConfig parse_sound_cnn_lstm_config(const nlohmann::json& j, const std::string& where);

struct SoundClassification {
  std::string label;  // the most probable class
  int index = 0;
  std::vector<float> probabilities;  // softmax over the classes, in label order
  std::vector<float> logits;
  float anomaly_score = 0.0f;  // 1 - P(normal label)
  bool anomaly = false;        // the predicted class is not the normal one (as the chapter)
};

class SoundCnnLstm {
 public:
  static std::unique_ptr<SoundCnnLstm> load(const std::filesystem::path& dir);

  const SoundCnnLstmConfig& config() const { return config_; }
  // Shortest input (frames) that survives the pooling layers.
  size_t min_frames() const;

  // logits [num_classes] for one clip's features x[frames, input_dim].
  // Thread-safe (the weights are read-only); `pool` does the GEMMs.
  std::vector<float> forward(ThreadPool& pool, const float* x, size_t frames) const;

  // Pre-processed samples -> MFCC [frames, input_dim], standardised per clip
  // if the config says so.
  std::vector<float> features(const std::vector<float>& samples) const;

  // decode -> pre-process -> features -> forward -> softmax.
  SoundClassification classify(ThreadPool& pool, const std::filesystem::path& audio) const;
  SoundClassification classify_samples(ThreadPool& pool, const std::vector<float>& samples,
                                       const std::string& name) const;

 private:
  SoundCnnLstm() = default;
  std::shared_ptr<WeightStore> store_;
  SoundCnnLstmConfig config_;
  std::vector<Conv1dWeights> convs_;
  std::vector<LstmLayer> lstm_;
  Linear fc_;
  std::unique_ptr<MelExtractor> mel_;
  int normal_index_ = 0;
};

}  // namespace mmfuse
