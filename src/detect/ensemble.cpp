#include "detect/ensemble.h"

#include <algorithm>

#include "detect/calibration.h"

namespace mmfuse::sensor {

const std::vector<std::string>& Ensemble::member_names() {
  static const std::vector<std::string> names = {"iforest", "t2", "pca", "mset"};
  return names;
}

void Ensemble::fit(const Matrix& train) {
  members_.clear();
  thresholds_.clear();
  for (const auto& name : member_names()) {
    auto member = make_detector(name, options_);
    const double t = calibrate_threshold(*member, train, options_.smooth, options_.folds, 1.0);
    member->fit(train);
    // A member that scored every held-out row 0 has no scale: give it a tiny one.
    thresholds_.push_back(std::max(t, 1e-12));
    members_.push_back(std::move(member));
  }
}

double Ensemble::score(const double* row) const {
  double s = 0.0;
  for (size_t i = 0; i < members_.size(); ++i) s += members_[i]->score(row) / thresholds_[i];
  return s / static_cast<double>(members_.size());
}

}  // namespace mmfuse::sensor
