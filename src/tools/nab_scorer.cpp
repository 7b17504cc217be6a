#include "tools/nab_scorer.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

#include "mmfuse/error.h"

namespace mmfuse::sensor {

double nab_scaled_sigmoid(double p) {
  if (p > 3.0) return -1.0;  // a false positive far behind any window
  return 2.0 / (1.0 + std::exp(5.0 * p)) - 1.0;
}

size_t nab_probation_rows(size_t rows, double percent) {
  const double by_rows = std::floor(percent * static_cast<double>(rows));
  // NAB compares the row index with the float min(.); ceil keeps `i >= limit`.
  const double cap = std::ceil(percent * 5000.0);
  return static_cast<size_t>(std::min(by_rows, cap));
}

std::vector<NabPoint> nab_points(const std::vector<double>& scores,
                                 const std::vector<NabWindow>& windows, const NabCosts& costs,
                                 long window_base, size_t* windows_scored, double probation) {
  const size_t n = scores.size();
  for (size_t w = 0; w < windows.size(); ++w) {
    MMFUSE_CHECK(windows[w].first <= windows[w].last && windows[w].last < n, bad_input,
                 "NAB window " + std::to_string(w) + " is outside the file's rows");
    MMFUSE_CHECK(w == 0 || windows[w].first > windows[w - 1].last, bad_input,
                 "NAB windows overlap or are out of order");
  }
  const double max_tp = nab_scaled_sigmoid(-1.0);
  const size_t probation_rows = nab_probation_rows(n, probation);
  std::vector<NabPoint> out;
  out.reserve(n - std::min(n, probation_rows));
  size_t next = 0;            // next window to enter
  long current = -1;          // window the row is in (index into windows)
  long previous = -1;         // last window left
  std::vector<bool> scored(windows.size(), false);
  for (size_t i = 0; i < n; ++i) {
    if (current < 0 && next < windows.size() && windows[next].first == i)
      current = static_cast<long>(next++);
    double weighted = 0.0;
    if (current >= 0) {
      const NabWindow& w = windows[static_cast<size_t>(current)];
      const double width = static_cast<double>(w.last - w.first + 1);
      const double position = -static_cast<double>(w.last - i + 1) / width;
      weighted = nab_scaled_sigmoid(position) * costs.tp / max_tp;
    } else if (previous < 0) {
      weighted = -costs.fp;  // no window yet: as far from one as can be
    } else {
      const NabWindow& w = windows[static_cast<size_t>(previous)];
      const double width = static_cast<double>(w.last - w.first + 1);
      const double past = static_cast<double>(i - w.last) / std::max(1.0, width - 1.0);
      weighted = nab_scaled_sigmoid(past) * costs.fp;
    }
    if (i >= probation_rows) {
      NabPoint p;
      p.anomaly_score = scores[i];
      p.sweep_score = weighted;
      if (current >= 0) {
        p.window = window_base + current;
        scored[static_cast<size_t>(current)] = true;
      }
      out.push_back(p);
    }
    if (current >= 0 && windows[static_cast<size_t>(current)].last == i) {
      previous = current;
      current = -1;
    }
  }
  if (windows_scored != nullptr)
    *windows_scored = static_cast<size_t>(std::count(scored.begin(), scored.end(), true));
  return out;
}

namespace {

// The running corpus score while detections are added: false positives sum,
// each window contributes max(-A_FN, its best detection).
struct Tally {
  std::unordered_map<long, double> best;  // window -> current contribution
  double fp_sum = 0.0, window_sum = 0.0;
  size_t tp = 0, tn = 0, fp = 0, fn = 0;

  Tally(const std::vector<NabPoint>& points, const NabCosts& costs) {
    for (const auto& p : points) {
      if (p.window >= 0) {
        ++fn;
        if (best.emplace(p.window, -costs.fn).second) window_sum -= costs.fn;
      } else {
        ++tn;
      }
    }
  }
  void detect(const NabPoint& p) {
    if (p.window < 0) {
      ++fp, --tn;
      fp_sum += p.sweep_score;
      return;
    }
    ++tp, --fn;
    double& b = best[p.window];
    if (p.sweep_score > b) {
      window_sum += p.sweep_score - b;
      b = p.sweep_score;
    }
  }
  NabThresholdScore at(double threshold) const {
    return {threshold, fp_sum + window_sum, tp, tn, fp, fn};
  }
};

}  // namespace

std::vector<NabThresholdScore> nab_scores_by_threshold(std::vector<NabPoint> points,
                                                       const NabCosts& costs) {
  std::stable_sort(points.begin(), points.end(), [](const NabPoint& a, const NabPoint& b) {
    return a.anomaly_score > b.anomaly_score;
  });
  Tally t(points, costs);
  std::vector<NabThresholdScore> out;
  double current = 1.1;  // NAB starts above every score in [0, 1]: nothing detected
  for (const auto& p : points) {
    if (p.anomaly_score != current) {
      out.push_back(t.at(current));
      current = p.anomaly_score;
    }
    t.detect(p);
  }
  out.push_back(t.at(current));
  return out;
}

NabThresholdScore nab_optimize_threshold(const std::vector<NabPoint>& points,
                                         const NabCosts& costs) {
  const auto all = nab_scores_by_threshold(points, costs);
  NabThresholdScore best = all.front();
  for (const auto& s : all)
    if (s.score > best.score) best = s;
  return best;
}

NabThresholdScore nab_score_at(const std::vector<NabPoint>& points, const NabCosts& costs,
                               double threshold) {
  Tally t(points, costs);
  for (const auto& p : points)
    if (p.anomaly_score >= threshold) t.detect(p);
  return t.at(threshold);
}

double nab_normalized(double score, double null_score, double perfect_score) {
  MMFUSE_CHECK(perfect_score != null_score, bad_input,
               "NAB normalisation needs at least one labelled window");
  return 100.0 * (score - null_score) / (perfect_score - null_score);
}

std::vector<double> nab_rank_normalize(const std::vector<double>& scores) {
  const size_t n = scores.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  std::vector<double> out(n);
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && scores[order[j]] == scores[order[i]]) ++j;
    const double rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;  // average
    for (size_t k = i; k < j; ++k) out[order[k]] = rank / static_cast<double>(n);
    i = j;
  }
  return out;
}

}  // namespace mmfuse::sensor
