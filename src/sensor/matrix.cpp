#include "sensor/matrix.h"

#include <algorithm>

#include "mmfuse/error.h"

namespace mmfuse::sensor {

Matrix Matrix::slice_rows(size_t begin, size_t end) const {
  MMFUSE_ASSERT(begin <= end && end <= rows);
  Matrix out(end - begin, cols);
  std::copy(data.begin() + static_cast<std::ptrdiff_t>(begin * cols),
            data.begin() + static_cast<std::ptrdiff_t>(end * cols), out.data.begin());
  return out;
}

Matrix Matrix::select_cols(const std::vector<size_t>& columns) const {
  Matrix out(rows, columns.size());
  for (size_t c : columns) MMFUSE_ASSERT(c < cols);
  for (size_t r = 0; r < rows; ++r)
    for (size_t j = 0; j < columns.size(); ++j) out(r, j) = (*this)(r, columns[j]);
  return out;
}

void Matrix::append_row(const double* values) {
  data.insert(data.end(), values, values + cols);
  ++rows;
}

}  // namespace mmfuse::sensor
