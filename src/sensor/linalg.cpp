#include "sensor/linalg.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "mmfuse/error.h"

// LAPACK's divide-and-conquer symmetric eigensolver (OpenBLAS exports it).
extern "C" void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda,
                        double* w, double* work, const int* lwork, int* iwork, const int* liwork,
                        int* info);

namespace mmfuse::sensor {

namespace {

// Matrices above this size go to LAPACK: Jacobi's O(n^3) per sweep takes
// seconds at a few hundred channels (a 500-register poll), dsyevd
// milliseconds. Small ones (SKAB's 8 channels) keep the exact Jacobi path.
constexpr size_t kJacobiMax = 64;

SymmetricEigen lapack_eigen(const Matrix& input) {
  // Single-threaded, as the rest of mmfuse keeps OpenBLAS (core/thread_pool):
  // its own threads would spin on the core a pinned poller needs.
  static const bool single = (openblas_set_num_threads(1), true);
  (void)single;
  const int n = static_cast<int>(input.rows);
  std::vector<double> a = input.data;  // symmetric: row-major = column-major
  std::vector<double> w(input.rows);
  int info = 0, lwork = -1, liwork = -1, iwork_query = 0;
  double work_query = 0.0;
  dsyevd_("V", "U", &n, a.data(), &n, w.data(), &work_query, &lwork, &iwork_query, &liwork, &info);
  MMFUSE_CHECK(info == 0, internal, "dsyevd workspace query failed");
  lwork = static_cast<int>(work_query);
  liwork = iwork_query;
  std::vector<double> work(static_cast<size_t>(lwork));
  std::vector<int> iwork(static_cast<size_t>(liwork));
  dsyevd_("V", "U", &n, a.data(), &n, w.data(), work.data(), &lwork, iwork.data(), &liwork, &info);
  MMFUSE_CHECK(info == 0, bad_input, "eigen-decomposition did not converge");
  // Ascending values, vector k in a[k*n .. k*n+n) (column k, column-major).
  SymmetricEigen out;
  out.vectors = Matrix(input.rows, input.rows);
  for (size_t j = 0; j < input.rows; ++j) {
    const size_t k = input.rows - 1 - j;
    out.values.push_back(w[k]);
    for (size_t i = 0; i < input.rows; ++i) out.vectors(i, j) = a[k * input.rows + i];
  }
  return out;
}

}  // namespace

void Standardizer::fit(const Matrix& x, double min_sd) {
  MMFUSE_ASSERT(x.rows > 0);
  mean.assign(x.cols, 0.0);
  sd.assign(x.cols, 0.0);
  for (size_t r = 0; r < x.rows; ++r)
    for (size_t c = 0; c < x.cols; ++c) mean[c] += x(r, c);
  for (double& m : mean) m /= static_cast<double>(x.rows);
  for (size_t r = 0; r < x.rows; ++r)
    for (size_t c = 0; c < x.cols; ++c) sd[c] += (x(r, c) - mean[c]) * (x(r, c) - mean[c]);
  // Population sd (divides by n), as scikit-learn's StandardScaler does.
  for (double& s : sd) s = std::max(std::sqrt(s / static_cast<double>(x.rows)), min_sd);
}

void Standardizer::apply(const double* in, double* out) const {
  for (size_t c = 0; c < mean.size(); ++c) out[c] = (in[c] - mean[c]) / sd[c];
}

Matrix Standardizer::apply(const Matrix& x) const {
  Matrix out(x.rows, x.cols);
  for (size_t r = 0; r < x.rows; ++r) apply(x.row(r), out.row(r));
  return out;
}

Matrix covariance(const Matrix& x) {
  MMFUSE_ASSERT(x.rows >= 2);
  const size_t d = x.cols;
  std::vector<double> mean(d, 0.0);
  for (size_t r = 0; r < x.rows; ++r)
    for (size_t c = 0; c < d; ++c) mean[c] += x(r, c);
  for (double& m : mean) m /= static_cast<double>(x.rows);
  Matrix cov(d, d);
  for (size_t r = 0; r < x.rows; ++r) {
    const double* row = x.row(r);
    for (size_t i = 0; i < d; ++i)
      for (size_t j = i; j < d; ++j) cov(i, j) += (row[i] - mean[i]) * (row[j] - mean[j]);
  }
  for (size_t i = 0; i < d; ++i)
    for (size_t j = i; j < d; ++j) {
      cov(i, j) /= static_cast<double>(x.rows - 1);
      cov(j, i) = cov(i, j);
    }
  return cov;
}

SymmetricEigen symmetric_eigen(const Matrix& input) {
  MMFUSE_ASSERT(input.rows == input.cols);
  if (input.rows > kJacobiMax) return lapack_eigen(input);
  const size_t n = input.rows;
  Matrix a = input;
  Matrix v(n, n);
  for (size_t i = 0; i < n; ++i) v(i, i) = 1.0;
  // Cyclic Jacobi rotations until the off-diagonal mass is negligible.
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0, diag = 0.0;
    for (size_t i = 0; i < n; ++i) {
      diag += a(i, i) * a(i, i);
      for (size_t j = i + 1; j < n; ++j) off += a(i, j) * a(i, j);
    }
    if (off <= 1e-30 * std::max(diag, 1e-300)) break;
    for (size_t p = 0; p < n; ++p)
      for (size_t q = p + 1; q < n; ++q) {
        if (a(p, q) == 0.0) continue;
        const double theta = (a(q, q) - a(p, p)) / (2.0 * a(p, q));
        const double t =
            (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1.0 / std::sqrt(t * t + 1), s = t * c;
        for (size_t k = 0; k < n; ++k) {
          const double akp = a(k, p), akq = a(k, q);
          a(k, p) = c * akp - s * akq;
          a(k, q) = s * akp + c * akq;
        }
        for (size_t k = 0; k < n; ++k) {
          const double apk = a(p, k), aqk = a(q, k);
          a(p, k) = c * apk - s * aqk;
          a(q, k) = s * apk + c * aqk;
        }
        for (size_t k = 0; k < n; ++k) {
          const double vkp = v(k, p), vkq = v(k, q);
          v(k, p) = c * vkp - s * vkq;
          v(k, q) = s * vkp + c * vkq;
        }
      }
  }
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t x, size_t y) { return a(x, x) > a(y, y); });
  SymmetricEigen out;
  out.vectors = Matrix(n, n);
  for (size_t j = 0; j < n; ++j) {
    out.values.push_back(a(order[j], order[j]));
    for (size_t i = 0; i < n; ++i) out.vectors(i, j) = v(i, order[j]);
  }
  return out;
}

Matrix symmetric_pinv(const Matrix& a, double rel_tol) {
  const SymmetricEigen e = symmetric_eigen(a);
  const size_t n = a.rows;
  const double top = e.values.empty() ? 0.0 : std::max(e.values.front(), 0.0);
  Matrix out(n, n);
  for (size_t k = 0; k < n; ++k) {
    if (e.values[k] <= rel_tol * top || e.values[k] <= 0.0) continue;
    const double inv = 1.0 / e.values[k];
    for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j < n; ++j) out(i, j) += e.vectors(i, k) * e.vectors(j, k) * inv;
  }
  return out;
}

LuSolver::LuSolver(Matrix a) : lu_(std::move(a)) {
  MMFUSE_ASSERT(lu_.rows == lu_.cols);
  const size_t n = lu_.rows;
  perm_.resize(n);
  std::iota(perm_.begin(), perm_.end(), 0);
  double scale = 0.0;
  for (double x : lu_.data) scale = std::max(scale, std::fabs(x));
  for (size_t k = 0; k < n; ++k) {
    size_t pivot = k;
    for (size_t i = k + 1; i < n; ++i)
      if (std::fabs(lu_(i, k)) > std::fabs(lu_(pivot, k))) pivot = i;
    MMFUSE_CHECK(std::fabs(lu_(pivot, k)) > 1e-13 * std::max(scale, 1e-300), bad_input,
                 "linear system is singular (training rows too alike)");
    if (pivot != k) {
      std::swap_ranges(lu_.row(k), lu_.row(k) + n, lu_.row(pivot));
      std::swap(perm_[k], perm_[pivot]);
    }
    const double inv = 1.0 / lu_(k, k);
    for (size_t i = k + 1; i < n; ++i) {
      const double f = (lu_(i, k) *= inv);
      if (f == 0.0) continue;
      double* ri = lu_.row(i);
      const double* rk = lu_.row(k);
      for (size_t j = k + 1; j < n; ++j) ri[j] -= f * rk[j];
    }
  }
}

void LuSolver::solve(double* b) const {
  const size_t n = lu_.rows;
  std::vector<double> y(n);
  for (size_t i = 0; i < n; ++i) {
    double s = b[perm_[i]];
    const double* r = lu_.row(i);
    for (size_t j = 0; j < i; ++j) s -= r[j] * y[j];
    y[i] = s;
  }
  for (size_t i = n; i-- > 0;) {
    double s = y[i];
    const double* r = lu_.row(i);
    for (size_t j = i + 1; j < n; ++j) s -= r[j] * y[j];
    y[i] = s / r[i];
  }
  std::copy(y.begin(), y.end(), b);
}

}  // namespace mmfuse::sensor
