#include "detect/pca_t2q.h"

#include <algorithm>
#include <vector>

#include "mmfuse/error.h"

namespace mmfuse::sensor {

void PcaT2Q::fit(const Matrix& train) {
  MMFUSE_CHECK(train.rows > train.cols + 1, bad_input,
               "PCA T2+Q needs more training rows than channels + 1 (got " +
                   std::to_string(train.rows) + " rows, " + std::to_string(train.cols) +
                   " channels)");
  MMFUSE_CHECK(options_.explained_variance > 0.0 && options_.explained_variance <= 1.0, bad_input,
               "PCA explained variance must be in (0, 1]");
  scaler_.fit(train);
  const Matrix z = scaler_.apply(train);
  const SymmetricEigen eig = symmetric_eigen(covariance(z));
  const size_t d = train.cols;
  double total = 0.0;
  for (double v : eig.values) total += std::max(v, 0.0);
  MMFUSE_CHECK(total > 0.0, bad_input, "PCA: training rows have no variance");
  k_ = d;
  double cumulative = 0.0;
  for (size_t i = 0; i < d; ++i) {
    cumulative += std::max(eig.values[i], 0.0) / total;
    if (cumulative > options_.explained_variance) {
      k_ = i + 1;
      break;
    }
  }
  // Components with (numerically) zero variance cannot carry a T2 term.
  while (k_ > 1 && eig.values[k_ - 1] <= 1e-12 * eig.values[0]) --k_;
  components_ = Matrix(d, k_);
  lambda_.assign(eig.values.begin(), eig.values.begin() + static_cast<std::ptrdiff_t>(k_));
  for (size_t i = 0; i < d; ++i)
    for (size_t j = 0; j < k_; ++j) components_(i, j) = eig.vectors(i, j);
  t2_mean_ = q_mean_ = 0.0;
  for (size_t r = 0; r < train.rows; ++r) {
    double t2, q;
    statistics(train.row(r), &t2, &q);
    t2_mean_ += t2;
    q_mean_ += q;
  }
  t2_mean_ = std::max(t2_mean_ / static_cast<double>(train.rows), 1e-12);
  q_mean_ = std::max(q_mean_ / static_cast<double>(train.rows), 1e-12);
  // With every component kept Q is rounding noise: score T2 alone.
  use_q_ = k_ < d;
}

void PcaT2Q::statistics(const double* row, double* t2, double* q) const {
  const size_t d = components_.rows;
  std::vector<double> z(d), resid(d);
  scaler_.apply(row, z.data());
  resid = z;
  *t2 = 0.0;
  for (size_t j = 0; j < k_; ++j) {
    double t = 0.0;
    for (size_t i = 0; i < d; ++i) t += components_(i, j) * z[i];
    *t2 += t * t / lambda_[j];
    for (size_t i = 0; i < d; ++i) resid[i] -= t * components_(i, j);
  }
  *q = 0.0;
  for (double r : resid) *q += r * r;
}

double PcaT2Q::score(const double* row) const {
  double t2, q;
  statistics(row, &t2, &q);
  return t2 / t2_mean_ + (use_q_ ? q / q_mean_ : 0.0);
}

}  // namespace mmfuse::sensor
