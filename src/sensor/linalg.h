// Small dense linear algebra for the sensor detectors (matrices of a few
// hundred rows at most): per-channel standardisation, covariance, symmetric
// eigen-decomposition (Jacobi up to 64 x 64, LAPACK's dsyevd above: hundreds
// of channels, as a 500-register poll has), LU solve. Plain loops otherwise:
// SKAB-sized matrices are too small for a BLAS call to pay off.
#pragma once

#include <vector>

#include "sensor/matrix.h"

namespace mmfuse::sensor {

// Per-channel z-scoring fitted on training rows. A channel whose training
// standard deviation is below `min_sd` (constant, e.g. a stuck or quantised
// sensor) is scaled by min_sd instead, so it cannot divide by zero.
struct Standardizer {
  std::vector<double> mean;
  std::vector<double> sd;

  void fit(const Matrix& x, double min_sd = 1e-9);
  void apply(const double* in, double* out) const;  // cols values each
  Matrix apply(const Matrix& x) const;
};

// Sample covariance (divides by n - 1) of the columns of x.
Matrix covariance(const Matrix& x);

// Eigen-decomposition of a symmetric matrix: eigenvalues in decreasing order,
// eigenvectors as the columns of `vectors` (same order).
struct SymmetricEigen {
  std::vector<double> values;
  Matrix vectors;
};
SymmetricEigen symmetric_eigen(const Matrix& a);

// Moore-Penrose inverse of a symmetric matrix through its eigenvalues;
// eigenvalues below rel_tol * largest are treated as zero.
Matrix symmetric_pinv(const Matrix& a, double rel_tol = 1e-10);

// LU factorisation with partial pivoting of a square matrix, for repeated solves.
class LuSolver {
 public:
  // Throws ErrorKind::bad_input when the matrix is numerically singular.
  explicit LuSolver(Matrix a);
  // Solves A x = b in place (b has n values).
  void solve(double* b) const;
  size_t size() const { return lu_.rows; }

 private:
  Matrix lu_;
  std::vector<size_t> perm_;
};

}  // namespace mmfuse::sensor
