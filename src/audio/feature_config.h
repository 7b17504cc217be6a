// Every parameter of the log-mel / MFCC front end, with librosa's conventions
// (see docs/sound.md and training/sound_features.py, the NumPy definition the
// C++ code is tested against). Stored in model config.json files so a model is
// always fed the features it was trained on.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace mmfuse {

enum class MelScale { slaney, htk };
enum class PadMode { constant, reflect };

struct FeatureConfig {
  int sample_rate = 16000;     // Hz; audio is resampled to this first
  double pre_emphasis = 0.97;  // y[n] = x[n] - a x[n-1]; 0 switches it off
  int frame_length = 400;      // window length in samples (25 ms at 16 kHz)
  int hop_length = 160;        // frame step in samples (10 ms at 16 kHz)
  int n_fft = 512;             // DFT size in [frame_length, 4096]; the window is centred in it
  bool center = true;          // pad n_fft / 2 samples on both sides (frame t centred at t * hop)
  PadMode pad_mode = PadMode::constant;  // zeros (librosa >= 0.10) or reflection
  int n_mels = 64;                       // triangular filters
  double fmin = 0.0;                     // lowest filter edge, Hz
  double fmax = 0.0;                     // highest filter edge, Hz; 0 = sample_rate / 2
  MelScale mel_scale = MelScale::slaney;
  bool slaney_norm = true;  // scale each filter by 2 / (its width in Hz)
  double amin = 1e-10;      // power floor before the log
  double ref = 1.0;         // 0 dB reference power
  double top_db = 80.0;     // floor at (clip maximum - top_db) dB; 0 = no floor
  int n_mfcc = 40;          // cepstral coefficients kept (<= n_mels)
  double lifter = 0.0;      // sinusoidal lifter L; 0 = none

  int n_bins() const { return n_fft / 2 + 1; }
  double max_frequency() const { return fmax > 0.0 ? fmax : sample_rate / 2.0; }
  // Throws ErrorKind::bad_input naming `where` and the field on an invalid value.
  void validate(const std::string& where) const;
};

nlohmann::json feature_config_to_json(const FeatureConfig& config);
// Missing fields keep their defaults; wrong types and values are errors naming `where`.
FeatureConfig feature_config_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace mmfuse
