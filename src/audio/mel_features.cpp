#include "audio/mel_features.h"

#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <numbers>

#include "mmfuse/error.h"

namespace mmfuse {

namespace {

double hz_to_mel(double f, MelScale scale) {
  if (scale == MelScale::htk) return 2595.0 * std::log10(1.0 + f / 700.0);
  constexpr double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
  const double logstep = std::log(6.4) / 27.0;
  return f >= min_log_hz ? min_log_mel + std::log(f / min_log_hz) / logstep : f / f_sp;
}

double mel_to_hz(double m, MelScale scale) {
  if (scale == MelScale::htk) return 700.0 * (std::pow(10.0, m / 2595.0) - 1.0);
  constexpr double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
  const double logstep = std::log(6.4) / 27.0;
  return m >= min_log_mel ? min_log_hz * std::exp(logstep * (m - min_log_mel)) : f_sp * m;
}

// FFTW's planner is not thread-safe, so plans are made under one lock, once per
// size, and kept until the process exits (then freed with FFTW's own tables, so
// leak checkers stay quiet); executing a plan on new arrays
// (fftw_execute_dft_r2c) is thread-safe. FFTW_ESTIMATE: the same plan, hence the
// same rounding, on every run.
struct PlanCache {
  std::mutex mutex;
  std::map<int, fftw_plan> plans;
  ~PlanCache() {
    for (auto& entry : plans) fftw_destroy_plan(entry.second);
    fftw_cleanup();
  }
};

fftw_plan r2c_plan(int n_fft) {
  static PlanCache cache;
  std::lock_guard<std::mutex> lock(cache.mutex);
  fftw_plan& plan = cache.plans[n_fft];
  if (plan == nullptr) {
    double* in = fftw_alloc_real(static_cast<size_t>(n_fft));
    fftw_complex* out = fftw_alloc_complex(static_cast<size_t>(n_fft / 2 + 1));
    plan = in && out ? fftw_plan_dft_r2c_1d(n_fft, in, out, FFTW_ESTIMATE) : nullptr;
    fftw_free(in);
    fftw_free(out);
    MMFUSE_CHECK(plan != nullptr, internal,
                 "FFTW: cannot plan a " + std::to_string(n_fft) + "-point FFT");
  }
  return plan;
}

struct FftwFree {
  void operator()(void* p) const { fftw_free(p); }
};

}  // namespace

MelExtractor::MelExtractor(const FeatureConfig& config) : config_(config) {
  config_.validate("feature config");
  const int n_fft = config_.n_fft, win = config_.frame_length, bins = config_.n_bins();

  window_.resize(static_cast<size_t>(win));
  for (int n = 0; n < win; ++n)
    window_[static_cast<size_t>(n)] = 0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * n / win);

  plan_ = r2c_plan(n_fft);

  // Triangular filters between consecutive mel-spaced edges (librosa.filters.mel).
  const int n_mels = config_.n_mels;
  const double mel_lo = hz_to_mel(config_.fmin, config_.mel_scale);
  const double mel_hi = hz_to_mel(config_.max_frequency(), config_.mel_scale);
  std::vector<double> edges(static_cast<size_t>(n_mels) + 2);
  for (size_t i = 0; i < edges.size(); ++i)
    edges[i] = mel_to_hz(mel_lo + (mel_hi - mel_lo) * static_cast<double>(i) / (n_mels + 1),
                         config_.mel_scale);
  filters_.resize(static_cast<size_t>(n_mels));
  for (int m = 0; m < n_mels; ++m) {
    const double lo = edges[static_cast<size_t>(m)], mid = edges[static_cast<size_t>(m) + 1],
                 hi = edges[static_cast<size_t>(m) + 2];
    const double norm = config_.slaney_norm ? 2.0 / (hi - lo) : 1.0;
    Filter& filter = filters_[static_cast<size_t>(m)];
    filter.first_bin = -1;
    for (int k = 0; k < bins; ++k) {
      const double f = static_cast<double>(config_.sample_rate) / 2.0 * k / (bins - 1);
      const double w = std::max(0.0, std::min((f - lo) / (mid - lo), (hi - f) / (hi - mid)));
      if (w <= 0.0) {
        if (filter.first_bin >= 0) break;  // past the triangle
        continue;
      }
      if (filter.first_bin < 0) filter.first_bin = k;
      // Zero weights between first and current bin cannot occur: the triangle is convex.
      filter.weights.push_back(w * norm);
    }
    if (filter.first_bin < 0) filter.first_bin = 0;  // empty filter (too narrow for the FFT)
  }

  // Orthonormal DCT-II rows k < n_mfcc, with the lifter folded in.
  const int n_mfcc = config_.n_mfcc;
  dct_.resize(static_cast<size_t>(n_mfcc) * static_cast<size_t>(n_mels));
  for (int k = 0; k < n_mfcc; ++k) {
    const double scale = k == 0 ? std::sqrt(1.0 / n_mels) : std::sqrt(2.0 / n_mels);
    const double lift =
        config_.lifter > 0.0
            ? 1.0 + config_.lifter / 2.0 * std::sin(std::numbers::pi * (k + 1) / config_.lifter)
            : 1.0;
    for (int n = 0; n < n_mels; ++n)
      dct_[static_cast<size_t>(k) * static_cast<size_t>(n_mels) + static_cast<size_t>(n)] =
          scale * lift * std::cos(std::numbers::pi * k * (2.0 * n + 1.0) / (2.0 * n_mels));
  }
}

size_t MelExtractor::frames(size_t samples) const {
  const size_t n_fft = static_cast<size_t>(config_.n_fft),
               hop = static_cast<size_t>(config_.hop_length);
  const size_t padded = config_.center ? samples + 2 * (n_fft / 2) : samples;
  return padded < n_fft ? 0 : 1 + (padded - n_fft) / hop;
}

std::vector<float> MelExtractor::power_spectrogram(const std::vector<float>& samples) const {
  const std::vector<double> power = power_f64(samples);
  return std::vector<float>(power.begin(), power.end());
}

std::vector<double> MelExtractor::power_f64(const std::vector<float>& samples) const {
  const size_t n = samples.size(), n_fft = static_cast<size_t>(config_.n_fft);
  const size_t hop = static_cast<size_t>(config_.hop_length),
               bins = static_cast<size_t>(config_.n_bins());
  const size_t win = static_cast<size_t>(config_.frame_length), offset = (n_fft - win) / 2;
  const size_t count = frames(n);
  std::vector<double> power(count * bins);
  if (count == 0) return power;

  // Pre-emphasis, then centre padding, into one contiguous buffer.
  const size_t pad = config_.center ? n_fft / 2 : 0;
  std::vector<double> x(n + 2 * pad, 0.0);
  const double a = config_.pre_emphasis;
  x[pad] = samples[0];
  for (size_t i = 1; i < n; ++i) x[pad + i] = samples[i] - a * samples[i - 1];
  if (pad > 0 && config_.pad_mode == PadMode::reflect && n > pad) {
    // numpy's "reflect": x[-i] = x[i], edge sample not repeated.
    for (size_t i = 1; i <= pad; ++i) {
      x[pad - i] = x[pad + i];
      x[pad + n - 1 + i] = x[pad + n - 1 - i];
    }
  }  // shorter clips keep zero padding, as the NumPy definition does

  // Each frame: the window over its support, zeros around it, one real FFT. The
  // buffers come from fftw_alloc, aligned as the plan expects.
  std::unique_ptr<double, FftwFree> frame(fftw_alloc_real(n_fft));
  std::unique_ptr<fftw_complex, FftwFree> spectrum(fftw_alloc_complex(bins));
  MMFUSE_CHECK(frame && spectrum, internal, "FFTW: out of memory");
  double* in = frame.get();
  std::fill(in, in + n_fft, 0.0);
  for (size_t t = 0; t < count; ++t) {
    const double* src = x.data() + t * hop + offset;
    for (size_t i = 0; i < win; ++i) in[offset + i] = src[i] * window_[i];
    fftw_execute_dft_r2c(plan_, in, spectrum.get());
    const fftw_complex* s = spectrum.get();
    double* p = power.data() + t * bins;
    for (size_t k = 0; k < bins; ++k) p[k] = s[k][0] * s[k][0] + s[k][1] * s[k][1];
  }
  return power;
}

std::vector<float> MelExtractor::log_mel(const std::vector<float>& samples) const {
  const std::vector<double> power = power_f64(samples);
  const size_t bins = static_cast<size_t>(config_.n_bins()), n_mels = filters_.size();
  const size_t count = power.size() / bins;
  std::vector<float> out(count * n_mels);
  const double ref_db = 10.0 * std::log10(std::max(config_.amin, config_.ref));
  double top = -std::numeric_limits<double>::infinity();
  for (size_t t = 0; t < count; ++t) {
    const double* p = power.data() + t * bins;
    for (size_t m = 0; m < n_mels; ++m) {
      const Filter& filter = filters_[m];
      double sum = 0.0;
      for (size_t i = 0; i < filter.weights.size(); ++i)
        sum += filter.weights[i] * p[static_cast<size_t>(filter.first_bin) + i];
      const double db = 10.0 * std::log10(std::max(config_.amin, sum)) - ref_db;
      out[t * n_mels + m] = static_cast<float>(db);
      top = std::max(top, db);
    }
  }
  if (config_.top_db > 0.0 && !out.empty()) {
    const float floor = static_cast<float>(top - config_.top_db);
    for (float& v : out) v = std::max(v, floor);
  }
  return out;
}

std::vector<float> MelExtractor::mfcc_from_log_mel(const std::vector<float>& log_mel,
                                                   size_t frames) const {
  const size_t n_mels = static_cast<size_t>(config_.n_mels),
               n_mfcc = static_cast<size_t>(config_.n_mfcc);
  MMFUSE_ASSERT(log_mel.size() == frames * n_mels);
  std::vector<float> out(frames * n_mfcc);
  for (size_t t = 0; t < frames; ++t) {
    const float* x = log_mel.data() + t * n_mels;
    for (size_t k = 0; k < n_mfcc; ++k) {
      const double* row = dct_.data() + k * n_mels;
      double sum = 0.0;
      for (size_t m = 0; m < n_mels; ++m) sum += row[m] * x[m];
      out[t * n_mfcc + k] = static_cast<float>(sum);
    }
  }
  return out;
}

std::vector<float> MelExtractor::mfcc(const std::vector<float>& samples) const {
  const std::vector<float> lm = log_mel(samples);
  return mfcc_from_log_mel(lm, lm.size() / static_cast<size_t>(config_.n_mels));
}

std::vector<float> MelExtractor::filterbank() const {
  const size_t bins = static_cast<size_t>(config_.n_bins());
  std::vector<float> dense(filters_.size() * bins, 0.0f);
  for (size_t m = 0; m < filters_.size(); ++m)
    for (size_t i = 0; i < filters_[m].weights.size(); ++i)
      dense[m * bins + static_cast<size_t>(filters_[m].first_bin) + i] =
          static_cast<float>(filters_[m].weights[i]);
  return dense;
}

void standardize_columns(float* x, size_t rows, size_t cols, double min_std) {
  if (rows == 0) return;
  for (size_t c = 0; c < cols; ++c) {
    double mean = 0.0;
    for (size_t r = 0; r < rows; ++r) mean += x[r * cols + c];
    mean /= static_cast<double>(rows);
    double var = 0.0;
    for (size_t r = 0; r < rows; ++r) {
      const double d = x[r * cols + c] - mean;
      var += d * d;
    }
    const double sd = std::sqrt(var / static_cast<double>(rows));
    const double scale = sd < min_std ? 1.0 : 1.0 / sd;
    for (size_t r = 0; r < rows; ++r)
      x[r * cols + c] = static_cast<float>((x[r * cols + c] - mean) * scale);
  }
}

}  // namespace mmfuse
