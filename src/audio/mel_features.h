// Log-mel spectrogram and MFCCs of a mono clip, exactly as FeatureConfig
// defines them (the NumPy definition in training/sound_features.py; the test
// Mfcc.MatchesNumpyReference holds the two together to 1e-4). Arrays are
// time-major: [frames, n_mels] / [frames, n_mfcc].
//
// The spectrum is a double-precision real FFT (FFTW's fftw3, in the caller's
// thread). A float FFT (fftwf) was tried first: its rounding error is relative
// to the whole frame's energy, so bands 50-60 dB below the loudest one came out
// 3e-4 dB off, over the 1e-4 bar; double precision holds it.
#pragma once

#include <cstddef>
#include <vector>

#include "audio/feature_config.h"

struct fftw_plan_s;  // FFTW's plan (fftw_plan), kept out of this header

namespace mmfuse {

class MelExtractor {
 public:
  // Precomputes the window, the mel filters and the DCT matrix, and takes the FFT
  // plan for config.n_fft (made once per size per process, under a lock).
  explicit MelExtractor(const FeatureConfig& config);
  MelExtractor(const MelExtractor&) = delete;
  MelExtractor& operator=(const MelExtractor&) = delete;

  const FeatureConfig& config() const { return config_; }
  // Frames produced for a clip of `samples` samples (0 if too short without centring).
  size_t frames(size_t samples) const;

  // All three are const and may run concurrently on one extractor.
  // [frames, n_bins] power spectrum |FFT|^2 after pre-emphasis and windowing.
  std::vector<float> power_spectrogram(const std::vector<float>& samples) const;
  // [frames, n_mels] 10 log10 of the mel power, floored per FeatureConfig.
  std::vector<float> log_mel(const std::vector<float>& samples) const;
  // [frames, n_mfcc] DCT-II (orthonormal) of log_mel, liftered.
  std::vector<float> mfcc(const std::vector<float>& samples) const;
  // MFCCs from an existing log-mel array of `frames` rows.
  std::vector<float> mfcc_from_log_mel(const std::vector<float>& log_mel, size_t frames) const;

  // [n_mels, n_bins] dense mel filter matrix (for tests and plots).
  std::vector<float> filterbank() const;

 private:
  struct Filter {
    int first_bin = 0;
    std::vector<double> weights;  // bins first_bin .. first_bin + size - 1
  };
  std::vector<double> power_f64(const std::vector<float>& samples) const;

  FeatureConfig config_;
  std::vector<double> window_;   // frame_length values, periodic Hann
  fftw_plan_s* plan_ = nullptr;  // real-to-complex, n_fft points; shared, freed at exit
  std::vector<Filter> filters_;
  std::vector<double> dct_;  // [n_mfcc, n_mels], lifter folded in
};

// The chapter's per-clip standardisation (sklearn StandardScaler fitted on one
// clip): each column of x[rows, cols] gets zero mean and unit population std; a
// column whose std is below min_std is only centred. In place.
void standardize_columns(float* x, size_t rows, size_t cols, double min_std = 1e-4);

}  // namespace mmfuse
