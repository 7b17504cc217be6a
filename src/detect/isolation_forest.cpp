#include "detect/isolation_forest.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "mmfuse/error.h"

namespace mmfuse::sensor {

double IsolationForest::average_path_length(double n) {
  if (n <= 1.0) return 0.0;
  if (n <= 2.0) return 1.0;
  constexpr double kEulerGamma = 0.57721566490153286;
  return 2.0 * (std::log(n - 1.0) + kEulerGamma) - 2.0 * (n - 1.0) / n;
}

void IsolationForest::fit(const Matrix& train) {
  MMFUSE_CHECK(train.rows >= 2, bad_input, "Isolation Forest needs at least 2 training rows");
  MMFUSE_CHECK(options_.trees >= 1 && options_.sample_size >= 2, bad_input,
               "Isolation Forest needs trees >= 1 and sample size >= 2");
  cols_ = train.cols;
  psi_ = std::min(options_.sample_size, train.rows);
  const int height_limit = static_cast<int>(std::ceil(std::log2(static_cast<double>(psi_))));
  std::mt19937_64 rng(options_.seed);
  std::vector<size_t> all(train.rows);
  nodes_.clear();
  roots_.clear();
  std::vector<double> lo(cols_), hi(cols_);
  std::vector<size_t> candidates;
  for (int tree = 0; tree < options_.trees; ++tree) {
    // Sub-sample psi rows without replacement (partial Fisher-Yates).
    std::iota(all.begin(), all.end(), 0);
    for (size_t i = 0; i < psi_; ++i) {
      std::uniform_int_distribution<size_t> pick(i, all.size() - 1);
      std::swap(all[i], all[pick(rng)]);
    }
    std::vector<size_t> idx(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(psi_));
    // Grow depth-first; each work item is (node, begin, end, depth) over idx.
    struct Work {
      size_t node;
      size_t begin, end;
      int depth;
    };
    roots_.push_back(static_cast<int>(nodes_.size()));
    nodes_.push_back(Node{});
    std::vector<Work> stack = {{nodes_.size() - 1, 0, psi_, 0}};
    while (!stack.empty()) {
      const Work w = stack.back();
      stack.pop_back();
      const size_t size = w.end - w.begin;
      nodes_[w.node].value = w.depth + average_path_length(static_cast<double>(size));
      if (w.depth >= height_limit || size <= 1) continue;
      std::fill(lo.begin(), lo.end(), INFINITY);
      std::fill(hi.begin(), hi.end(), -INFINITY);
      for (size_t i = w.begin; i < w.end; ++i) {
        const double* r = train.row(idx[i]);
        for (size_t c = 0; c < cols_; ++c) {
          lo[c] = std::min(lo[c], r[c]);
          hi[c] = std::max(hi[c], r[c]);
        }
      }
      candidates.clear();
      for (size_t c = 0; c < cols_; ++c)
        if (hi[c] > lo[c]) candidates.push_back(c);
      if (candidates.empty()) continue;  // all rows identical: a leaf
      const size_t f =
          candidates[std::uniform_int_distribution<size_t>(0, candidates.size() - 1)(rng)];
      double t = std::uniform_real_distribution<double>(lo[f], hi[f])(rng);
      if (t >= hi[f]) t = lo[f];  // keep both sides non-empty, as scikit-learn does
      const auto mid_it = std::partition(idx.begin() + static_cast<std::ptrdiff_t>(w.begin),
                                         idx.begin() + static_cast<std::ptrdiff_t>(w.end),
                                         [&](size_t r) { return train(r, f) <= t; });
      const size_t mid = static_cast<size_t>(mid_it - idx.begin());
      const size_t left = nodes_.size();
      nodes_.push_back(Node{});
      nodes_.push_back(Node{});
      nodes_[w.node] = Node{t, static_cast<int>(f), static_cast<int>(left)};
      stack.push_back({left + 1, mid, w.end, w.depth + 1});
      stack.push_back({left, w.begin, mid, w.depth + 1});
    }
  }
}

double IsolationForest::mean_path_length(const double* row) const {
  MMFUSE_ASSERT(!roots_.empty());
  double total = 0.0;
  const Node* nodes = nodes_.data();
  for (int root : roots_) {
    const Node* n = nodes + root;
    while (n->feature >= 0) n = nodes + n->left + (row[n->feature] <= n->value ? 0 : 1);
    total += n->value;
  }
  return total / static_cast<double>(roots_.size());
}

double IsolationForest::score(const double* row) const {
  return std::exp2(-mean_path_length(row) / average_path_length(static_cast<double>(psi_)));
}

}  // namespace mmfuse::sensor
