#include "detect/online_detector.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "mmfuse/error.h"

namespace mmfuse::sensor {

namespace {

uint64_t mix(uint64_t h) {  // splitmix64 finaliser
  h += 0x9e3779b97f4a7c15ULL;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

double quantile(std::vector<double> v, double q) {
  const size_t k = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

constexpr uint64_t kNever = ~uint64_t{0};

}  // namespace

OnlineDetector::OnlineDetector(size_t channels, const OnlineOptions& options)
    : o_(options),
      channels_(channels),
      learn_(channels),
      recent_(channels),
      max_q_(channels),
      min_q_(channels) {
  MMFUSE_CHECK(channels >= 1, bad_input, "online detector: no channels");
  MMFUSE_CHECK(o_.learn_rows >= 2 && o_.levels > 0.0 && o_.max_order >= 1 && o_.short_rows >= 1 &&
                   o_.history_rows >= 2 && o_.memory_rows >= 1,
               bad_input, "online detector: bad options");
  short_.assign(o_.short_rows, 0.0);
  hist_.assign(o_.history_rows, 0.0);
}

uint64_t OnlineDetector::remember(uint64_t key) {
  auto [it, inserted] = seen_.emplace(key, row_);
  const uint64_t last = inserted ? kNever : it->second;
  it->second = row_;
  return last;
}

double OnlineDetector::novelty(const double* row) {
  size_t unseen = 0, total = 0;    // contexts of 2 rows and more
  size_t unseen1 = 0, total1 = 0;  // single values (and the joint state)
  uint64_t joint = 0x5bd1e995ULL;
  for (size_t c = 0; c < channels_; ++c) {
    const auto level = static_cast<int64_t>(std::floor((row[c] - origin_[c]) / width_[c]));
    auto& r = recent_[c];
    r.push_front(level);
    if (r.size() > o_.max_order) r.pop_back();
    uint64_t h = mix(0x1000 + c);
    for (size_t k = 0; k < r.size(); ++k) {
      h = mix(h ^ static_cast<uint64_t>(r[k]));
      const bool novel = remember(h ^ (uint64_t{k} << 56)) == kNever;
      (k == 0 ? unseen1 : unseen) += novel ? 1 : 0;
      ++(k == 0 ? total1 : total);
    }
    joint = mix(joint ^ static_cast<uint64_t>(level));
  }
  if (channels_ > 1) {
    ++total1;
    if (remember(joint ^ 0xabcdef0123456789ULL) == kNever) ++unseen1;
  }
  // Forget contexts not seen for memory_rows rows (amortised sweep).
  if (row_ > 0 && row_ % std::max<size_t>(o_.memory_rows / 2, 1) == 0) {
    for (auto it = seen_.begin(); it != seen_.end();)
      it = row_ - it->second > o_.memory_rows ? seen_.erase(it) : std::next(it);
  }
  const double values =
      total1 > 0 ? static_cast<double>(unseen1) / static_cast<double>(total1) : 0.0;
  const double patterns =
      total > 0 ? static_cast<double>(unseen) / static_cast<double>(total) : 0.0;
  return o_.value_weight * values + (1.0 - o_.value_weight) * patterns;
}

double OnlineDetector::likelihood_score(double n) {
  const size_t s = o_.short_rows, w = o_.history_rows;
  double& slot = short_[row_ % s];
  short_sum_ += n - slot;
  slot = n;
  const double recent = std::max(0.0, short_sum_ / static_cast<double>(s));
  const size_t filled = std::min<size_t>(row_, w);
  double score = 0.0;
  if (recent > 1e-12 && filled >= 2) {
    const double mean = hist_sum_ / static_cast<double>(filled);
    const double var = std::max(0.0, hist_sq_ / static_cast<double>(filled) - mean * mean);
    const double sd = std::max(std::sqrt(var), o_.min_deviation);
    const double z = (recent - mean) / sd;
    const double tail = 0.5 * std::erfc(z / std::sqrt(2.0));  // 1 - L
    score = std::clamp(std::log(tail + 1e-10) / std::log(1e-10), 0.0, 1.0);
  }
  double& h = hist_[row_ % w];
  if (row_ >= w) {
    hist_sum_ -= h;
    hist_sq_ -= h * h;
  }
  h = recent;
  hist_sum_ += recent;
  hist_sq_ += recent * recent;
  // Re-add now and then so rounding cannot accumulate.
  if (row_ % 8192 == 8191) {
    short_sum_ = hist_sum_ = hist_sq_ = 0.0;
    for (double v : short_) short_sum_ += v;
    for (size_t i = 0; i < std::min(row_ + 1, w); ++i)
      hist_sum_ += hist_[i], hist_sq_ += hist_[i] * hist_[i];
  }
  return score;
}

double OnlineDetector::spatial_excess(const double* row) {
  double worst = 0.0;
  for (size_t c = 0; c < channels_; ++c) {
    auto& hi = max_q_[c];
    auto& lo = min_q_[c];
    const double x = row[c];
    if (!hi.empty()) {
      const double top = hi.front().second, bottom = lo.front().second;
      const double range = top - bottom;
      const double beyond = std::max(x - top, bottom - x);
      if (beyond > 0.0)
        worst =
            std::max(worst, range > 0.0 ? beyond / range : std::numeric_limits<double>::infinity());
    }
    while (!hi.empty() && hi.back().second <= x) hi.pop_back();
    hi.emplace_back(row_, x);
    while (!lo.empty() && lo.back().second >= x) lo.pop_back();
    lo.emplace_back(row_, x);
    while (hi.front().first + o_.history_rows <= row_) hi.pop_front();
    while (lo.front().first + o_.history_rows <= row_) lo.pop_front();
  }
  return worst;
}

double OnlineDetector::push(const double* row) {
  if (origin_.empty()) {
    for (size_t c = 0; c < channels_; ++c) learn_[c].push_back(row[c]);
    if (learn_[0].size() < o_.learn_rows) return 0.0;
    // The level grid, from the robust range of the learning rows.
    for (size_t c = 0; c < channels_; ++c) {
      const double lo = quantile(learn_[c], 0.05), hi = quantile(learn_[c], 0.95);
      const double mid = quantile(learn_[c], 0.5);
      double width = (hi - lo) / o_.levels;
      if (!(width > 0.0)) {
        // Flat (or nearly) in learning: any visible change is a new level.
        const double full = quantile(learn_[c], 1.0) - quantile(learn_[c], 0.0);
        width = full > 0.0 ? full / o_.levels : std::max(std::abs(mid) * 1e-3, 1e-9);
      }
      origin_.push_back(mid - width / 2);
      width_.push_back(width);
    }
    // Replay the learning rows: their contexts and novelty become the past.
    std::vector<double> r(channels_);
    const size_t n = learn_[0].size();
    for (size_t i = 0; i < n; ++i) {
      for (size_t c = 0; c < channels_; ++c) r[c] = learn_[c][i];
      last_novelty_ = novelty(r.data());
      likelihood_score(last_novelty_);
      spatial_excess(r.data());
      ++row_;
    }
    learn_.clear();
    return 0.0;
  }
  last_novelty_ = novelty(row);
  double score = likelihood_score(last_novelty_);
  if (spatial_excess(row) > o_.spatial_margin) score = 1.0;
  if (score < o_.threshold) score = 0.0;
  // One alarm per event: after a flag the score is held at 0 for rest_rows.
  if (flagged_ && row_ - last_flag_ < o_.rest_rows)
    score = 0.0;
  else if (score >= o_.threshold)
    flagged_ = true, last_flag_ = row_;
  ++row_;
  return score;
}

}  // namespace mmfuse::sensor
