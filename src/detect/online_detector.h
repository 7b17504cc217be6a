// An online, label-free anomaly detector that learns as it streams ("online"
// method): nothing is fitted up front, so it follows drift, level shifts and
// regime changes, and a constant signal is just one more pattern.
//
// Per channel, values are quantised into levels of a fixed width (a fraction
// of the robust range of the first `learn_rows` values; levels are unbounded
// integers, so values beyond that range get new levels rather than being
// clamped). The contexts ending at each row -- the last 1, 2, ..., max_order
// levels -- are looked up in a memory of contexts seen before; the row's
// novelty is value_weight x the share of unseen single levels plus the rest x
// the share of unseen longer contexts (0 = a known pattern, 1 = a value never
// seen at all). With several channels the joint level vector counts as one
// more single level. Every context is then learned, so a new normal (a level
// shift that persists) stops being novel after a few rows; contexts not seen
// for `memory_rows` rows are forgotten.
//
// The novelty is turned into a probability-like score as HTM's anomaly
// likelihood does: the mean novelty of the last `short_rows` rows against the
// mean and deviation of the novelty over the last `history_rows` rows, L =
// 1 - Q(z), reported as log(1 - L) / log(1e-10) (0.5 at L = 1 - 1e-5, 1 at
// 1 - 1e-10), so one threshold means the same on every stream. A value
// outside the range of the last `history_rows` values by more than
// `spatial_margin` x that range (a "spatial" anomaly, as contextOSE and HTM's
// detectors add) scores 1 whatever its likelihood. Scores under the
// threshold are reported as 0: a row is either an alarm, graded by how
// unlikely it is, or nothing (so a quiet stream's sub-threshold noise never
// outranks another stream's alarm). After a flag (score >= threshold) the
// score is held at 0 for `rest_rows` rows: one alarm per event, not one per
// row of it.
//
// A value type: copying it copies the learned state (the plant copies a
// detector warmed on its baseline for every reading). Not thread-safe; one
// stream per instance.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <unordered_map>
#include <vector>

namespace mmfuse::sensor {

struct OnlineOptions {
  size_t learn_rows = 150;     // rows that fix the level width (and score 0)
  double levels = 16.0;        // levels across the robust range of those rows
  size_t max_order = 6;        // longest context, rows
  size_t short_rows = 3;       // recent window of the likelihood
  double value_weight = 0.5;   // share of the novelty given to unseen values (vs patterns)
  size_t history_rows = 2000;  // long window of the likelihood
  double min_deviation = 0.05;  // floor on the novelty's deviation
  size_t memory_rows = 20000;  // contexts unseen this long are forgotten
  double spatial_margin = 0.1;  // beyond the recent range by this share of it: score 1
  double threshold = 0.35;     // flag when score >= this (L >= 1 - 10^-3.5)
  size_t rest_rows = 150;      // after a flag, the score is held at 0 this long
};

class OnlineDetector {
 public:
  OnlineDetector(size_t channels, const OnlineOptions& options);
  // Learns the row and returns its score in [0, 1].
  double push(const double* row);
  // The novelty of the last row (share of unseen contexts, 0..1).
  double last_novelty() const { return last_novelty_; }

 private:
  double novelty(const double* row);
  double likelihood_score(double novelty);
  // Largest share of its recent range by which a channel's value lies outside
  // it (0 inside); then adds the value to the range windows.
  double spatial_excess(const double* row);
  uint64_t remember(uint64_t key);  // returns the row it was last seen (or ~0)

  OnlineOptions o_;
  size_t channels_;
  size_t row_ = 0;
  std::vector<std::vector<double>> learn_;  // per channel, until learn_rows
  std::vector<double> origin_, width_;      // per channel level grid
  std::vector<std::deque<int64_t>> recent_; // per channel, last max_order levels
  std::unordered_map<uint64_t, uint64_t> seen_;  // context hash -> last row seen
  // Per channel, monotonic queues (row, value) of the recent max and min.
  std::vector<std::deque<std::pair<size_t, double>>> max_q_, min_q_;
  std::vector<double> short_, hist_;        // ring buffers of novelty
  double short_sum_ = 0.0, hist_sum_ = 0.0, hist_sq_ = 0.0;
  double last_novelty_ = 0.0;
  bool flagged_ = false;
  size_t last_flag_ = 0;  // row of the last flag
};

}  // namespace mmfuse::sensor
