// A dense row-major matrix of doubles: the sample matrix every sensor stage
// passes along (rows = time steps, cols = channels), and the small square
// matrices of the linear-algebra helpers.
#pragma once

#include <cstddef>
#include <vector>

namespace mmfuse::sensor {

struct Matrix {
  size_t rows = 0;
  size_t cols = 0;
  std::vector<double> data;  // rows * cols values, row-major

  Matrix() = default;
  Matrix(size_t r, size_t c, double value = 0.0) : rows(r), cols(c), data(r * c, value) {}

  double& operator()(size_t r, size_t c) { return data[r * cols + c]; }
  double operator()(size_t r, size_t c) const { return data[r * cols + c]; }
  double* row(size_t r) { return data.data() + r * cols; }
  const double* row(size_t r) const { return data.data() + r * cols; }

  // Rows [begin, end) as a new matrix.
  Matrix slice_rows(size_t begin, size_t end) const;
  // The given columns, in the given order.
  Matrix select_cols(const std::vector<size_t>& columns) const;
  void append_row(const double* values);
};

}  // namespace mmfuse::sensor
