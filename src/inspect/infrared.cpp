// Infrared analysis (see infrared.h). The chapter thresholds a calibrated
// temperature map; here the hot pixels are grouped into regions so that a
// single noisy pixel does not raise an alarm and each region can be reported.
#include "inspect/infrared.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "mmfuse/error.h"

namespace mmfuse::inspect {

InfraredFinding analyze_infrared(const GrayFrame& frame, const InfraredConfig& config,
                                 bool want_overlay) {
  MMFUSE_CHECK(frame.width > 0 && frame.height > 0 &&
                   frame.pixels.size() == static_cast<size_t>(frame.width) * frame.height,
               bad_input, "infrared: empty or malformed frame");
  cv::Mat t(frame.height, frame.width, CV_32F);
  double sum = 0.0, tmax = -1e300, tmin = 1e300;
  for (int y = 0; y < frame.height; ++y) {
    float* row = t.ptr<float>(y);
    const uint16_t* p = frame.pixels.data() + static_cast<size_t>(y) * frame.width;
    for (int x = 0; x < frame.width; ++x) {
      const double v = config.a * p[x] + config.b;
      row[x] = static_cast<float>(v);
      sum += v;
      tmax = std::max(tmax, v);
      tmin = std::min(tmin, v);
    }
  }
  InfraredFinding out;
  out.max_c = tmax;
  out.min_c = tmin;
  out.mean_c = sum / (static_cast<double>(frame.width) * frame.height);

  // Compare in double, as computed above, so the threshold is exact.
  cv::Mat hot(frame.height, frame.width, CV_8U);
  for (int y = 0; y < frame.height; ++y) {
    const uint16_t* p = frame.pixels.data() + static_cast<size_t>(y) * frame.width;
    uint8_t* h = hot.ptr<uint8_t>(y);
    for (int x = 0; x < frame.width; ++x)
      h[x] = config.a * p[x] + config.b > config.hot_threshold_c ? 255 : 0;
  }
  cv::Mat labels, stats, centroids;
  const int n = cv::connectedComponentsWithStats(hot, labels, stats, centroids, 8, CV_32S);
  std::vector<double> rmax(static_cast<size_t>(n), -1e300), rsum(static_cast<size_t>(n), 0.0);
  for (int y = 0; y < frame.height; ++y) {
    const int* l = labels.ptr<int>(y);
    const uint16_t* p = frame.pixels.data() + static_cast<size_t>(y) * frame.width;
    for (int x = 0; x < frame.width; ++x) {
      if (l[x] == 0) continue;
      const double v = config.a * p[x] + config.b;
      const auto i = static_cast<size_t>(l[x]);
      rmax[i] = std::max(rmax[i], v);
      rsum[i] += v;
    }
  }
  double region_max = -1e300;
  for (int i = 1; i < n; ++i) {
    HotRegion r;
    r.area = stats.at<int>(i, cv::CC_STAT_AREA);
    if (r.area < config.min_area) continue;
    r.x = stats.at<int>(i, cv::CC_STAT_LEFT);
    r.y = stats.at<int>(i, cv::CC_STAT_TOP);
    r.width = stats.at<int>(i, cv::CC_STAT_WIDTH);
    r.height = stats.at<int>(i, cv::CC_STAT_HEIGHT);
    r.max_c = rmax[static_cast<size_t>(i)];
    r.mean_c = rsum[static_cast<size_t>(i)] / r.area;
    r.cx = centroids.at<double>(i, 0);
    r.cy = centroids.at<double>(i, 1);
    region_max = std::max(region_max, r.max_c);
    out.regions.push_back(r);
  }
  std::sort(out.regions.begin(), out.regions.end(),
            [](const HotRegion& a, const HotRegion& b) { return a.max_c > b.max_c; });
  // Score: exp of the margin over the threshold in units of 10 C, clamped so
  // that it agrees with the region decision (>= 1 iff a region qualifies).
  if (!out.regions.empty()) {
    out.raw_score =
        std::max(1.0, std::exp(std::min(50.0, (region_max - config.hot_threshold_c) / 10.0)));
  } else {
    out.raw_score =
        std::min(0.999, std::exp(std::min(50.0, (tmax - config.hot_threshold_c) / 10.0)));
  }

  if (want_overlay) {
    cv::Mat norm, color, rgb;
    const double span = std::max(1e-6, tmax - tmin);
    t.convertTo(norm, CV_8U, 255.0 / span, -tmin * 255.0 / span);
    cv::applyColorMap(norm, color, cv::COLORMAP_INFERNO);
    cv::cvtColor(color, rgb, cv::COLOR_BGR2RGB);
    for (const HotRegion& r : out.regions) {
      cv::rectangle(rgb, cv::Rect(r.x, r.y, r.width, r.height), cv::Scalar(0, 255, 255), 2);
      char label[32];
      std::snprintf(label, sizeof label, "%.1fC", r.max_c);
      cv::putText(rgb, label, cv::Point(r.x, std::max(12, r.y - 4)), cv::FONT_HERSHEY_SIMPLEX, 0.5,
                  cv::Scalar(0, 255, 255), 1);
    }
    out.overlay.width = rgb.cols;
    out.overlay.height = rgb.rows;
    out.overlay.rgb.assign(rgb.data, rgb.data + rgb.total() * 3);
  }
  return out;
}

}  // namespace mmfuse::inspect
