#include "detect/hotelling_t2.h"

#include <vector>

#include "mmfuse/error.h"

namespace mmfuse::sensor {

void HotellingT2::fit(const Matrix& train) {
  MMFUSE_CHECK(train.rows > train.cols + 1, bad_input,
               "T-squared needs more training rows than channels + 1 (got " +
                   std::to_string(train.rows) + " rows, " + std::to_string(train.cols) +
                   " channels)");
  scaler_.fit(train);
  inv_cov_ = symmetric_pinv(covariance(scaler_.apply(train)));
}

double HotellingT2::score(const double* row) const {
  const size_t d = inv_cov_.rows;
  std::vector<double> z(d);
  scaler_.apply(row, z.data());
  double t2 = 0.0;
  for (size_t i = 0; i < d; ++i) {
    double s = 0.0;
    for (size_t j = 0; j < d; ++j) s += inv_cov_(i, j) * z[j];
    t2 += z[i] * s;
  }
  return t2;
}

}  // namespace mmfuse::sensor
