#include "detect/mset.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <vector>

#include "mmfuse/error.h"

namespace mmfuse::sensor {
namespace {

double similarity(const double* x, double x_norm, const double* y, double y_norm, size_t d) {
  double dist = 0.0;
  for (size_t i = 0; i < d; ++i) dist += (x[i] - y[i]) * (x[i] - y[i]);
  dist = std::sqrt(dist);
  if (dist == 0.0) return 1.0;
  return 1.0 - dist / (x_norm + y_norm);
}

double norm(const double* x, size_t d) {
  double s = 0.0;
  for (size_t i = 0; i < d; ++i) s += x[i] * x[i];
  return std::sqrt(s);
}

}  // namespace

void Mset::fit(const Matrix& train) {
  MMFUSE_CHECK(train.rows >= 2, bad_input, "MSET needs at least 2 training rows");
  MMFUSE_CHECK(options_.mset_memory >= 2, bad_input, "MSET memory must hold at least 2 states");
  scaler_.fit(train);
  const Matrix z = scaler_.apply(train);
  const size_t d = z.cols;
  // Memory rows: extremes of every channel first, then an even spread.
  std::vector<size_t> picks;
  for (size_t c = 0; c < d; ++c) {
    size_t lo = 0, hi = 0;
    for (size_t r = 1; r < z.rows; ++r) {
      if (z(r, c) < z(lo, c)) lo = r;
      if (z(r, c) > z(hi, c)) hi = r;
    }
    picks.push_back(lo);
    picks.push_back(hi);
  }
  const size_t budget = std::min(options_.mset_memory, z.rows);
  const size_t spread = budget > picks.size() ? budget - picks.size() : 0;
  for (size_t i = 0; i < spread; ++i)
    picks.push_back(spread == 1 ? 0 : i * (z.rows - 1) / (spread - 1));
  std::set<std::vector<double>> seen;
  memory_ = Matrix(0, d);
  for (size_t r : picks) {
    if (memory_.rows >= budget) break;
    std::vector<double> v(z.row(r), z.row(r) + d);
    if (seen.insert(v).second) memory_.append_row(v.data());
  }
  const size_t m = memory_.rows;
  MMFUSE_CHECK(m >= 2, bad_input, "MSET: training rows are all identical");
  norm_.resize(m);
  for (size_t i = 0; i < m; ++i) norm_[i] = norm(memory_.row(i), d);
  Matrix g(m, m);
  for (size_t i = 0; i < m; ++i)
    for (size_t j = i; j < m; ++j) {
      g(i, j) = g(j, i) = similarity(memory_.row(i), norm_[i], memory_.row(j), norm_[j], d);
    }
  // A small ridge keeps G solvable when states are nearly alike.
  for (size_t i = 0; i < m; ++i) g(i, i) += 1e-6;
  const LuSolver lu(g);
  // projection = D' G^-1 = (G^-T D)': solve G' Y = D column by column (G is symmetric).
  projection_ = Matrix(d, m);
  std::vector<double> col(m);
  for (size_t c = 0; c < d; ++c) {
    for (size_t i = 0; i < m; ++i) col[i] = memory_(i, c);
    lu.solve(col.data());
    for (size_t i = 0; i < m; ++i) projection_(c, i) = col[i];
  }
}

void Mset::estimate(const double* row, double* z, double* out) const {
  const size_t d = memory_.cols, m = memory_.rows;
  scaler_.apply(row, z);
  const double zn = norm(z, d);
  std::vector<double> s(m);
  for (size_t i = 0; i < m; ++i) s[i] = similarity(memory_.row(i), norm_[i], z, zn, d);
  for (size_t c = 0; c < d; ++c) {
    const double* p = projection_.row(c);
    double acc = 0.0;
    for (size_t i = 0; i < m; ++i) acc += p[i] * s[i];
    out[c] = acc;
  }
}

double Mset::score(const double* row) const {
  const size_t d = memory_.cols;
  std::vector<double> z(d), est(d);
  estimate(row, z.data(), est.data());
  double e = 0.0;
  for (size_t c = 0; c < d; ++c) e += (z[c] - est[c]) * (z[c] - est[c]);
  return e;
}

}  // namespace mmfuse::sensor
