// Isolation Forest (Liu, Ting & Zhou, ICDM 2008), as in the paper and as
// scikit-learn implements it: each of `trees` isolation trees is grown on a
// sub-sample of psi = min(sample_size, n) rows drawn without replacement, to a
// height limit of ceil(log2 psi); a node splits on a feature drawn uniformly
// among those not constant in the node, at a threshold drawn uniformly between
// the feature's min and max there (x <= t goes left). The path length of a row
// in a tree is the depth of the leaf it reaches plus c(leaf size), and
//   score(x) = 2^(-E[h(x)] / c(psi)),   c(n) = 2 H(n-1) - 2 (n-1) / n,
// with H(i) = ln(i) + 0.5772156649 (c(2) = 1, c(1) = 0). This is minus
// scikit-learn's `score_samples`; ~0.5 is ordinary, near 1 is anomalous.
#pragma once

#include <vector>

#include "detect/detector.h"

namespace mmfuse::sensor {

class IsolationForest : public Detector {
 public:
  explicit IsolationForest(const DetectorOptions& options) : options_(options) {}
  std::string name() const override { return "iforest"; }
  void fit(const Matrix& train) override;
  double score(const double* row) const override;
  std::unique_ptr<Detector> clone_unfitted() const override {
    return std::make_unique<IsolationForest>(options_);
  }

  // E[h(x)]: the path length averaged over the trees.
  double mean_path_length(const double* row) const;
  size_t psi() const { return psi_; }
  // c(n): the average path length of an unsuccessful search in a binary search
  // tree of n points, which normalises path lengths.
  static double average_path_length(double n);

 private:
  // 16 bytes; the right child is always left + 1. A leaf stores its whole path
  // length, depth + c(size), so scoring needs no logarithm.
  struct Node {
    double value = 0.0;  // split threshold, or a leaf's path length
    int feature = -1;    // -1 for a leaf
    int left = -1;       // index in nodes_
  };
  DetectorOptions options_;
  size_t psi_ = 0;
  size_t cols_ = 0;
  std::vector<Node> nodes_;  // all trees, one after another
  std::vector<int> roots_;   // index of each tree's root in nodes_
};

}  // namespace mmfuse::sensor
