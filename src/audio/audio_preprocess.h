// The chapter's sound pre-processing as one step: decode -> mono -> resample
// (libsoxr HQ) -> normalise (peak or RMS) -> remove silence (short-time energy).
// Its settings travel in model config.json files next to the feature settings.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "audio/audio_decode.h"
#include "audio/normalize.h"
#include "audio/silence_trim.h"

namespace mmfuse {

struct AudioPreprocessConfig {
  int sample_rate = 16000;  // target rate, Hz
  NormalizeMode normalize = NormalizeMode::peak;
  float normalize_target = 1.0f;  // peak level, or RMS level for NormalizeMode::rms
  TrimOptions trim;
};

nlohmann::json preprocess_config_to_json(const AudioPreprocessConfig& config);
// Missing fields keep their defaults; errors name `where` and the field.
AudioPreprocessConfig preprocess_config_from_json(const nlohmann::json& j,
                                                  const std::string& where);

// Applies the chain to a decoded clip; `name` appears in errors.
std::vector<float> preprocess_audio(const AudioClip& clip, const AudioPreprocessConfig& config,
                                    const std::string& name);

// decode_audio_file + preprocess_audio.
std::vector<float> load_audio(const std::filesystem::path& path,
                              const AudioPreprocessConfig& config);

}  // namespace mmfuse
