#include "detect/gaussian_detector.h"
#include "io/atomic_file.h"

#include <cblas.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "core/ops.h"
#include "io/model_folder.h"
#include "io/safetensors.h"
#include "mmfuse/error.h"

namespace mmfuse {

namespace fs = std::filesystem;

namespace {

constexpr const char* kModelType = "sound_gaussian";

// In-place inverse of a symmetric positive definite matrix through its
// Cholesky factor (d is at most a few hundred: plain loops in double).
bool invert_spd(std::vector<double>& a, size_t d) {
  std::vector<double> l(d * d, 0.0);
  for (size_t j = 0; j < d; ++j) {
    double s = a[j * d + j];
    for (size_t k = 0; k < j; ++k) s -= l[j * d + k] * l[j * d + k];
    if (!(s > 0.0)) return false;
    l[j * d + j] = std::sqrt(s);
    for (size_t i = j + 1; i < d; ++i) {
      double v = a[i * d + j];
      for (size_t k = 0; k < j; ++k) v -= l[i * d + k] * l[j * d + k];
      l[i * d + j] = v / l[j * d + j];
    }
  }
  // inv(L) by forward substitution, then inv(A) = inv(L)^T inv(L).
  std::vector<double> li(d * d, 0.0);
  for (size_t i = 0; i < d; ++i) {
    li[i * d + i] = 1.0 / l[i * d + i];
    for (size_t j = 0; j < i; ++j) {
      double s = 0.0;
      for (size_t k = j; k < i; ++k) s += l[i * d + k] * li[k * d + j];
      li[i * d + j] = -s / l[i * d + i];
    }
  }
  for (size_t i = 0; i < d; ++i)
    for (size_t j = 0; j <= i; ++j) {
      double s = 0.0;
      for (size_t k = i; k < d; ++k) s += li[k * d + i] * li[k * d + j];
      a[i * d + j] = a[j * d + i] = s;
    }
  return true;
}

std::vector<uint8_t> as_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(float));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

}  // namespace

FeatureConfig dcase_log_mel_features() {
  FeatureConfig f;
  f.pre_emphasis = 0.0;
  f.frame_length = 1024;
  f.n_fft = 1024;
  f.hop_length = 512;
  f.n_mels = 128;
  f.top_db = 0.0;
  return f;
}

int GaussianDetectorConfig::dim() const {
  return (feature == FrameFeature::mfcc ? features.n_mfcc : features.n_mels) * context;
}

nlohmann::json gaussian_config_to_json(const GaussianDetectorConfig& c) {
  return {{"model_type", kModelType},
          {"feature", c.feature == FrameFeature::mfcc ? "mfcc" : "log_mel"},
          {"context", c.context},
          {"clip_mean_norm", c.clip_mean_norm},
          {"shrinkage", c.shrinkage},
          {"threshold_sigma", c.threshold_sigma},
          {"calibration_segment_s", c.calibration_segment_s},
          {"max_folds", c.max_folds},
          {"dim", c.dim()},
          {"features", feature_config_to_json(c.features)},
          {"preprocess", preprocess_config_to_json(c.preprocess)}};
}

GaussianDetectorConfig gaussian_config_from_json(const nlohmann::json& j,
                                                 const std::string& where) {
  MMFUSE_CHECK(j.is_object(), bad_input, where + ": must be a JSON object");
  JsonFields f(j, where);
  const std::string type = f.string("model_type", "");
  MMFUSE_CHECK(type == kModelType, unsupported,
               where + ": model_type \"" + type + "\" is not " + kModelType);
  GaussianDetectorConfig c;
  const std::string feature = f.string("feature", "mfcc");
  MMFUSE_CHECK(feature == "log_mel" || feature == "mfcc", bad_input,
               where + ": field \"feature\" must be log_mel or mfcc");
  c.feature = feature == "mfcc" ? FrameFeature::mfcc : FrameFeature::log_mel;
  const int64_t context = f.integer("context", c.context);
  MMFUSE_CHECK(context >= 1 && context <= 32, bad_input,
               where + ": field \"context\" must be in [1, 32]");
  c.context = static_cast<int>(context);
  c.clip_mean_norm = f.boolean("clip_mean_norm", c.clip_mean_norm);
  c.shrinkage = f.number("shrinkage", c.shrinkage);
  MMFUSE_CHECK(c.shrinkage > 0.0 && c.shrinkage <= 1.0, bad_input,
               where + ": field \"shrinkage\" must be in (0, 1]");
  c.threshold_sigma = f.number("threshold_sigma", c.threshold_sigma);
  c.calibration_segment_s = f.number("calibration_segment_s", c.calibration_segment_s);
  MMFUSE_CHECK(c.calibration_segment_s > 0.0, bad_input,
               where + ": field \"calibration_segment_s\" must be positive");
  const int64_t folds = f.integer("max_folds", c.max_folds);
  MMFUSE_CHECK(folds >= 2 && folds <= 100, bad_input,
               where + ": field \"max_folds\" must be in [2, 100]");
  c.max_folds = static_cast<int>(folds);
  if (f.has("features")) c.features = feature_config_from_json(j["features"], where + " features");
  if (f.has("preprocess"))
    c.preprocess = preprocess_config_from_json(j["preprocess"], where + " preprocess");
  MMFUSE_CHECK(c.preprocess.sample_rate == c.features.sample_rate, bad_input,
               where + ": preprocess.sample_rate must equal features.sample_rate");
  MMFUSE_CHECK(c.dim() <= 4096, bad_input, where + ": feature dimension above 4096");
  MMFUSE_CHECK(!f.has("dim") || f.integer("dim", 0) == c.dim(), bad_input,
               where + ": field \"dim\" disagrees with the feature settings");
  return c;
}

GaussianDetector::GaussianDetector(GaussianDetectorConfig config)
    : config_(std::move(config)), mel_(std::make_shared<MelExtractor>(config_.features)) {}

std::vector<float> GaussianDetector::frame_features(const std::vector<float>& samples) const {
  std::vector<float> f =
      config_.feature == FrameFeature::mfcc ? mel_->mfcc(samples) : mel_->log_mel(samples);
  const size_t base = static_cast<size_t>(
      config_.feature == FrameFeature::mfcc ? config_.features.n_mfcc : config_.features.n_mels);
  const size_t frames = f.size() / base;
  if (config_.clip_mean_norm && frames > 0) {
    for (size_t c = 0; c < base; ++c) {
      double m = 0.0;
      for (size_t t = 0; t < frames; ++t) m += f[t * base + c];
      m /= static_cast<double>(frames);
      for (size_t t = 0; t < frames; ++t) f[t * base + c] = static_cast<float>(f[t * base + c] - m);
    }
  }
  const size_t k = static_cast<size_t>(config_.context);
  if (k == 1) return f;
  if (frames < k) return {};
  const size_t rows = frames - k + 1;
  std::vector<float> stacked(rows * base * k);
  for (size_t t = 0; t < rows; ++t)
    std::copy(f.begin() + static_cast<long>(t * base),
              f.begin() + static_cast<long>((t + k) * base),
              stacked.begin() + static_cast<long>(t * base * k));
  return stacked;
}

std::vector<std::vector<float>> GaussianDetector::features_of_files(
    ThreadPool& pool, const std::vector<fs::path>& files) const {
  std::vector<std::vector<float>> out(files.size());
  pool.parallel_tasks(files.size(), [&](size_t i, int) {
    out[i] = frame_features(load_audio(files[i], config_.preprocess));
    MMFUSE_CHECK(!out[i].empty(), bad_input,
                 files[i].string() + ": too short for one feature frame");
  });
  return out;
}

GaussianDetector::Moments GaussianDetector::estimate(
    const std::vector<const std::vector<float>*>& clips) const {
  const size_t d = static_cast<size_t>(config_.dim());
  size_t rows = 0;
  for (const auto* c : clips) rows += c->size() / d;
  MMFUSE_CHECK(rows >= 2, bad_input, "sound fit: fewer than 2 feature frames in the normal clips");
  Moments m;
  m.mean.assign(d, 0.0);
  for (const auto* c : clips)
    for (size_t i = 0; i < c->size(); ++i) m.mean[i % d] += (*c)[i];
  for (double& v : m.mean) v /= static_cast<double>(rows);
  // Covariance of centred frames: one GEMM (double, for a well-conditioned inverse).
  std::vector<double> centred(rows * d);
  size_t r = 0;
  for (const auto* c : clips)
    for (size_t t = 0; t < c->size() / d; ++t, ++r)
      for (size_t j = 0; j < d; ++j) centred[r * d + j] = (*c)[t * d + j] - m.mean[j];
  std::vector<double> cov(d * d, 0.0);
  cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<int>(d), static_cast<int>(rows),
              1.0 / static_cast<double>(rows - 1), centred.data(), static_cast<int>(d), 0.0,
              cov.data(), static_cast<int>(d));
  double trace = 0.0;
  for (size_t i = 0; i < d; ++i) trace += cov[i * d + i];
  MMFUSE_CHECK(trace > 1e-9 * static_cast<double>(d), bad_input,
               "sound fit: the normal clips' features do not vary (digital silence?)");
  const double s = config_.shrinkage, target = trace / static_cast<double>(d);
  for (size_t i = 0; i < d; ++i)
    for (size_t j = i; j < d; ++j) {
      const double v = (1.0 - s) * cov[i * d + j] + (i == j ? s * target : 0.0);
      cov[i * d + j] = cov[j * d + i] = v;
    }
  MMFUSE_CHECK(invert_spd(cov, d), bad_input,
               "sound fit: covariance of the normal clips is singular (all clips silent?)");
  m.precision = std::move(cov);
  return m;
}

void GaussianDetector::fit(const std::vector<std::vector<float>>& clips) {
  std::vector<const std::vector<float>*> all;
  training_frames_ = 0;
  for (const auto& c : clips) {
    all.push_back(&c);
    training_frames_ += c.size() / static_cast<size_t>(config_.dim());
  }
  const Moments m = estimate(all);
  mean_.assign(m.mean.begin(), m.mean.end());
  precision_.assign(m.precision.begin(), m.precision.end());
}

std::vector<float> GaussianDetector::scores_with(ThreadPool& pool, const std::vector<float>& frames,
                                                 const std::vector<float>& mean,
                                                 const std::vector<float>& precision, int dim) {
  const size_t d = static_cast<size_t>(dim), rows = frames.size() / d;
  std::vector<float> z(frames.size()), y(frames.size()), out(rows);
  for (size_t i = 0; i < frames.size(); ++i) z[i] = frames[i] - mean[i % d];
  // y = z P (P symmetric, so P serves as nn.Linear's [out, in] weight).
  linear(pool, z.data(), rows, Linear{precision.data(), nullptr, dim, dim, nullptr}, y.data());
  for (size_t t = 0; t < rows; ++t) {
    double s = 0.0;
    for (size_t j = 0; j < d; ++j) s += static_cast<double>(z[t * d + j]) * y[t * d + j];
    out[t] = static_cast<float>(s / static_cast<double>(d));
  }
  return out;
}

std::vector<float> GaussianDetector::frame_scores(ThreadPool& pool,
                                                  const std::vector<float>& frames) const {
  MMFUSE_ASSERT(fitted());
  return scores_with(pool, frames, mean_, precision_, config_.dim());
}

double GaussianDetector::score(ThreadPool& pool, const std::vector<float>& frames) const {
  const std::vector<float> s = frame_scores(pool, frames);
  MMFUSE_CHECK(!s.empty(), bad_input, "sound detect: clip too short for one feature frame");
  double sum = 0.0;
  for (float v : s) sum += v;
  return sum / static_cast<double>(s.size());
}

Calibration GaussianDetector::calibrate_threshold(ThreadPool& pool,
                                                  const std::vector<std::vector<float>>& clips) {
  const size_t d = static_cast<size_t>(config_.dim());
  // One clip: its two halves act as two clips.
  std::vector<std::vector<float>> halves;
  const std::vector<std::vector<float>>* use = &clips;
  if (clips.size() == 1) {
    const size_t rows = clips[0].size() / d, half = rows / 2;
    halves.emplace_back(clips[0].begin(), clips[0].begin() + static_cast<long>(half * d));
    halves.emplace_back(clips[0].begin() + static_cast<long>(half * d), clips[0].end());
    use = &halves;
  }
  const size_t n = use->size();
  MMFUSE_CHECK(n >= 2, bad_input, "sound fit: no normal clips to calibrate the threshold on");
  const size_t folds = std::min(n, static_cast<size_t>(config_.max_folds));
  const size_t seg_rows = std::max<size_t>(
      1,
      static_cast<size_t>(std::lround(config_.calibration_segment_s * config_.features.sample_rate /
                                      config_.features.hop_length)));
  std::vector<double> scores;
  for (size_t fold = 0; fold < folds; ++fold) {
    std::vector<const std::vector<float>*> train;
    for (size_t i = 0; i < n; ++i)
      if (i % folds != fold) train.push_back(&(*use)[i]);
    const Moments m = estimate(train);
    const std::vector<float> mean(m.mean.begin(), m.mean.end());
    const std::vector<float> precision(m.precision.begin(), m.precision.end());
    for (size_t i = fold; i < n; i += folds) {
      const std::vector<float> s = scores_with(pool, (*use)[i], mean, precision, config_.dim());
      // Whole segments, plus the remainder if it is at least half a segment.
      for (size_t b = 0; b < s.size(); b += seg_rows) {
        const size_t e = std::min(s.size(), b + seg_rows);
        if (e - b < seg_rows / 2 && b > 0) break;
        double sum = 0.0;
        for (size_t t = b; t < e; ++t) sum += s[t];
        scores.push_back(sum / static_cast<double>(e - b));
      }
    }
  }
  Calibration cal;
  cal.folds = folds;
  cal.segments = scores.size();
  for (double s : scores) cal.mean += s;
  cal.mean /= static_cast<double>(scores.size());
  for (double s : scores) {
    cal.std += (s - cal.mean) * (s - cal.mean);
    cal.max = std::max(cal.max, s);
  }
  cal.std = scores.size() > 1 ? std::sqrt(cal.std / static_cast<double>(scores.size() - 1)) : 0.0;
  threshold_ = cal.mean + config_.threshold_sigma * cal.std;
  calibration_mean_ = cal.mean;
  calibration_std_ = cal.std;
  return cal;
}

double false_alarm_rate_for_sigma(double sigma) {
  return 0.5 * std::erfc(sigma / std::sqrt(2.0));
}

double sigma_for_false_alarm_rate(double rate) {
  MMFUSE_CHECK(rate > 0.0 && rate <= 0.5, bad_input,
               "false-alarm rate must be in (0, 0.5], got " + std::to_string(rate));
  double lo = 0.0, hi = 40.0;  // the tail falls monotonically in sigma
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (false_alarm_rate_for_sigma(mid) > rate ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

double GaussianDetector::anomaly_probability(double score) const {
  if (std::isnan(calibration_mean_)) return calibration_mean_;
  if (!(calibration_std_ > 0.0)) return score > calibration_mean_ ? 1.0 : 0.0;
  return 1.0 - false_alarm_rate_for_sigma((score - calibration_mean_) / calibration_std_);
}

void GaussianDetector::save(const fs::path& dir, const nlohmann::json& extra) const {
  MMFUSE_ASSERT(fitted());
  const int d = config_.dim();
  nlohmann::json config = gaussian_config_to_json(config_);
  config["threshold"] = threshold_;
  if (!std::isnan(calibration_mean_))
    config["calibration"] = {{"mean", calibration_mean_}, {"std", calibration_std_}};
  config["training_frames"] = training_frames_;
  for (auto it = extra.begin(); it != extra.end(); ++it) config[it.key()] = it.value();
  // Write into a fresh sibling folder, then swap it in: a failure never leaves
  // a half-written model where a good one was.
  const fs::path target = fs::absolute(dir);
  const fs::path tmp = target.string() + ".tmp-write";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp);
  write_safetensors(tmp / "model.safetensors",
                    {{"mean", DType::F32, {d}, as_bytes(mean_)},
                     {"precision", DType::F32, {d, d}, as_bytes(precision_)}});
  {
    std::ofstream out(tmp / "config.json");
    out << config.dump(2) << "\n";
    MMFUSE_CHECK(out.good(), internal, (tmp / "config.json").string() + ": write failed");
  }
  replace_folder(tmp, target);
}

GaussianDetector GaussianDetector::load(const fs::path& dir) {
  const fs::path config_path = dir / "config.json";
  const nlohmann::json j = read_json_file(config_path);
  GaussianDetector det(gaussian_config_from_json(j, config_path.string()));
  JsonFields f(j, config_path.string());
  MMFUSE_CHECK(f.has("threshold"), bad_input,
               config_path.string() + ": field \"threshold\" is missing");
  det.threshold_ = f.number("threshold", 0.0);
  if (f.has("calibration")) {  // absent in folders written before probabilities
    const nlohmann::json& c = j.at("calibration");
    const std::string where = config_path.string() + ": field \"calibration\"";
    MMFUSE_CHECK(c.is_object() && c.contains("mean") && c.contains("std") &&
                     c["mean"].is_number() && c["std"].is_number(),
                 bad_input, where + " must be {\"mean\": number, \"std\": number}");
    det.calibration_mean_ = c["mean"].get<double>();
    det.calibration_std_ = c["std"].get<double>();
    MMFUSE_CHECK(std::isfinite(det.calibration_mean_) && det.calibration_std_ >= 0.0, bad_input,
                 where + ": mean must be finite and std >= 0");
  }
  det.training_frames_ = static_cast<size_t>(std::max<int64_t>(0, f.integer("training_frames", 0)));
  const auto store = WeightStore::open_folder(dir);
  const int d = det.config_.dim();
  const float* mean = store->f32("mean", {d});
  const float* precision = store->f32("precision", {d, d});
  det.mean_.assign(mean, mean + d);
  det.precision_.assign(precision, precision + static_cast<size_t>(d) * static_cast<size_t>(d));
  for (float v : det.precision_)
    MMFUSE_CHECK(std::isfinite(v), bad_input,
                 (dir / "model.safetensors").string() + ": non-finite precision");
  return det;
}

}  // namespace mmfuse
