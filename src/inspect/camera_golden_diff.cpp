// GoldenDiffDetector: photo vs the registered golden image of the point.
//   1. pre-process both (grey, resize to the chapter's 640x480, Gaussian denoise);
//   2. align: phase correlation gives the translation (sub-pixel), the photo is shifted onto the
//   golden;
//   3. illumination: a robust least-squares fit photo ~ alpha*golden + beta + gx*x + gy*y
//      (gain, offset and a linear light gradient), undone on the photo;
//   4. difference tolerant to residual misalignment: how far the photo leaves the
//      [erode(golden), dilate(golden)] band of a (2t+1)^2 neighbourhood;
//   5. threshold (given, or noise_k x the robust noise of the residual), opening
//      then closing, connected components -> boxes with confidence.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "fusion/fusion.h"
#include "inspect/camera_detector.h"
#include "mmfuse/error.h"

namespace mmfuse::inspect {

namespace {

cv::Mat as_mat(std::vector<float>& v, const CameraConfig& c) {
  return cv::Mat(c.height, c.width, CV_32F, v.data());
}

// Robust sigma of a sample (1.4826 x median absolute deviation around the median).
double robust_sigma(std::vector<float> v) {
  if (v.empty()) return 0.0;
  const size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<long>(mid), v.end());
  const float med = v[mid];
  for (float& x : v) x = std::fabs(x - med);
  std::nth_element(v.begin(), v.begin() + static_cast<long>(mid), v.end());
  return 1.4826 * v[mid];
}

// Solves the 4x4 normal equations of photo ~ a*g + b + c*x + d*y over the
// pixels with mask != 0 (x, y scaled to [-1, 1]). Returns {a, b, c, d}.
cv::Vec4d fit_light(const cv::Mat& photo, const cv::Mat& golden, const cv::Mat& mask) {
  cv::Matx44d ata = cv::Matx44d::zeros();
  cv::Vec4d atb(0, 0, 0, 0);
  const double sx = 2.0 / std::max(1, photo.cols - 1), sy = 2.0 / std::max(1, photo.rows - 1);
  for (int y = 0; y < photo.rows; y += 2) {
    const float* p = photo.ptr<float>(y);
    const float* g = golden.ptr<float>(y);
    const uint8_t* m = mask.ptr<uint8_t>(y);
    const double yy = y * sy - 1.0;
    for (int x = 0; x < photo.cols; x += 2) {
      if (!m[x]) continue;
      const double f[4] = {g[x], 1.0, x * sx - 1.0, yy};
      for (int i = 0; i < 4; ++i) {
        atb[i] += f[i] * p[x];
        for (int j = 0; j < 4; ++j) ata(i, j) += f[i] * f[j];
      }
    }
  }
  cv::Vec4d sol;
  if (!cv::solve(ata, atb, sol, cv::DECOMP_CHOLESKY)) return cv::Vec4d(1, 0, 0, 0);
  return sol;
}

void apply_light_inverse(cv::Mat& photo, const cv::Vec4d& k) {
  const double a = std::fabs(k[0]) < 1e-3 ? 1e-3 : k[0];
  const double sx = 2.0 / std::max(1, photo.cols - 1), sy = 2.0 / std::max(1, photo.rows - 1);
  for (int y = 0; y < photo.rows; ++y) {
    float* p = photo.ptr<float>(y);
    const double off_y = k[1] + k[3] * (y * sy - 1.0);
    for (int x = 0; x < photo.cols; ++x)
      p[x] = static_cast<float>((p[x] - off_y - k[2] * (x * sx - 1.0)) / a);
  }
}

class GoldenDiffDetector : public DefectDetector {
 public:
  explicit GoldenDiffDetector(const CameraConfig& config) : config_(config) {
    const Image golden = decode_image_file(config.golden);
    std::vector<float> g = preprocess_gray(golden, config);
    // Kept as 16-bit fixed point (1/64 grey level): a 500-point plant holds
    // 500 of these, so 0.6 MB each rather than 1.2 MB of floats plus the
    // derived band images (those are recomputed per photo, ~1 ms).
    golden_.resize(g.size());
    for (size_t i = 0; i < g.size(); ++i)
      golden_[i] = static_cast<uint16_t>(std::lround(std::clamp(g[i], 0.0f, 1023.0f) * kFixed));
  }

  std::string name() const override { return "golden_diff"; }

  CameraFinding detect(const Image& photo) const override {
    const CameraConfig& c = config_;
    std::vector<float> buf = preprocess_gray(photo, c);
    cv::Mat p = as_mat(buf, c);
    cv::Mat g;
    cv::Mat(c.height, c.width, CV_16U, const_cast<uint16_t*>(golden_.data()))
        .convertTo(g, CV_32F, 1.0 / kFixed);
    cv::Mat golden_hi, golden_lo, window;
    {
      const int k = 2 * c.tolerance_px + 1;
      const cv::Mat kernel = cv::getStructuringElement(cv::MORPH_RECT, cv::Size(k, k));
      cv::dilate(g, golden_hi, kernel);
      cv::erode(g, golden_lo, kernel);
      cv::createHanningWindow(window, g.size(), CV_32F);
    }
    CameraFinding out;

    // 2. Alignment (translation). phaseCorrelate(g, p) is the shift of p relative to g.
    double response = 0.0;
    // phaseCorrelate multiplies its inputs by the window in place when their size
    // needs no DFT padding (OpenCV 4.6), so it gets copies.
    const cv::Point2d shift = cv::phaseCorrelate(g.clone(), p.clone(), window, &response);
    const double shift_px = std::hypot(shift.x, shift.y);
    out.detail["shift_px"] = {shift.x, shift.y};
    out.detail["registration_response"] = response;
    MMFUSE_CHECK(shift_px <= c.max_shift_px, bad_input,
                 "camera: the photo does not register to the golden image (shift " +
                     std::to_string(shift_px) + " px > max_shift_px " +
                     std::to_string(c.max_shift_px) + ")");
    cv::Mat aligned;
    const cv::Matx23d m(1, 0, -shift.x, 0, 1, -shift.y);
    cv::warpAffine(p, aligned, m, p.size(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);

    // Pixels near the border may have been shifted in from outside: excluded.
    const int border = static_cast<int>(std::ceil(shift_px)) + c.tolerance_px + 2;
    cv::Mat valid(p.size(), CV_8U, cv::Scalar(0));
    if (border * 2 < c.width && border * 2 < c.height)
      valid(cv::Rect(border, border, c.width - 2 * border, c.height - 2 * border)).setTo(1);

    // Over- or under-exposed pixels (clipped by the camera) carry no information
    // about the surface: excluded, with a margin for the blur and misalignment.
    {
      cv::Mat clipped = (aligned >= 250.0f) | (aligned <= 4.0f);
      const int k = 2 * (c.tolerance_px + 1) + 1;
      cv::dilate(clipped, clipped, cv::getStructuringElement(cv::MORPH_RECT, cv::Size(k, k)));
      out.detail["clipped_px"] = cv::countNonZero(clipped);
      valid.setTo(0, clipped);
    }

    // 3. Illumination: fit, drop outliers (defects), refit, undo.
    cv::Vec4d light = fit_light(aligned, g, valid);
    {
      cv::Mat resid = aligned - (light[0] * g + light[1]);
      std::vector<float> sample;
      for (int y = 0; y < resid.rows; y += 4)
        for (int x = 0; x < resid.cols; x += 4)
          if (valid.at<uint8_t>(y, x)) sample.push_back(resid.at<float>(y, x));
      const double s = robust_sigma(std::move(sample)) + 1e-3;
      cv::Mat inliers = (cv::abs(resid) < 4.0 * s + 10.0) & (valid > 0);
      light = fit_light(aligned, g, inliers);
    }
    apply_light_inverse(aligned, light);
    out.detail["light"] = {
        {"gain", light[0]}, {"offset", light[1]}, {"gradient", {light[2], light[3]}}};

    // 4. Tolerant difference and the noise level of the plain residual.
    cv::Mat above, below, diff;
    cv::subtract(aligned, golden_hi, above);
    cv::subtract(golden_lo, aligned, below);
    cv::max(above, below, diff);
    cv::max(diff, 0.0, diff);
    std::vector<float> sample;
    for (int y = border; y < c.height - border; y += 3) {
      const float* a = aligned.ptr<float>(y);
      const float* gg = g.ptr<float>(y);
      const uint8_t* v = valid.ptr<uint8_t>(y);
      for (int x = border; x < c.width - border; x += 3)
        if (v[x]) sample.push_back(a[x] - gg[x]);
    }
    const double noise = robust_sigma(std::move(sample));
    const double thr =
        c.diff_threshold > 0 ? c.diff_threshold : std::max(c.min_diff, c.noise_k * noise);
    out.detail["noise_sigma"] = noise;
    out.detail["threshold"] = thr;

    // 5. Mask, morphology, components.
    cv::Mat mask;
    cv::compare(diff, thr, mask, cv::CMP_GT);
    mask.setTo(0, valid == 0);
    cv::morphologyEx(mask, mask, cv::MORPH_OPEN,
                     cv::getStructuringElement(cv::MORPH_RECT, cv::Size(2, 2)));
    cv::morphologyEx(mask, mask, cv::MORPH_CLOSE,
                     cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(7, 7)));
    cv::Mat labels, stats, centroids;
    const int n = cv::connectedComponentsWithStats(mask, labels, stats, centroids, 8, CV_32S);
    std::vector<double> sum(static_cast<size_t>(n), 0.0);
    std::vector<int> count(static_cast<size_t>(n), 0);
    for (int y = 0; y < labels.rows; ++y) {
      const int* l = labels.ptr<int>(y);
      const float* d = diff.ptr<float>(y);
      for (int x = 0; x < labels.cols; ++x)
        if (l[x] > 0) {
          sum[static_cast<size_t>(l[x])] += d[x];
          ++count[static_cast<size_t>(l[x])];
        }
    }
    const double fx = static_cast<double>(photo.width) / c.width;
    const double fy = static_cast<double>(photo.height) / c.height;
    int blobs = 0;
    for (int i = 1; i < n; ++i) {
      const double area = stats.at<int>(i, cv::CC_STAT_AREA);
      out.raw_score = std::max(out.raw_score, area / c.min_area);
      ++blobs;
      if (area < c.min_area) continue;
      Defect d;
      const double mean = count[static_cast<size_t>(i)] > 0
                              ? sum[static_cast<size_t>(i)] / count[static_cast<size_t>(i)]
                              : 0.0;
      // Box in golden coordinates -> photo coordinates (+shift) -> input pixels.
      const double x0 = stats.at<int>(i, cv::CC_STAT_LEFT) + shift.x;
      const double y0 = stats.at<int>(i, cv::CC_STAT_TOP) + shift.y;
      d.x = std::clamp(static_cast<int>(std::floor(x0 * fx)), 0, photo.width - 1);
      d.y = std::clamp(static_cast<int>(std::floor(y0 * fy)), 0, photo.height - 1);
      d.width = std::clamp(static_cast<int>(std::ceil(stats.at<int>(i, cv::CC_STAT_WIDTH) * fx)), 1,
                           photo.width - d.x);
      d.height = std::clamp(static_cast<int>(std::ceil(stats.at<int>(i, cv::CC_STAT_HEIGHT) * fy)),
                            1, photo.height - d.y);
      d.area = area;
      d.mean_diff = mean;
      d.confidence = fusion::calibrate_ratio(area / c.min_area * mean / thr);
      out.defects.push_back(d);
    }
    std::sort(out.defects.begin(), out.defects.end(),
              [](const Defect& a, const Defect& b) { return a.confidence > b.confidence; });
    out.detail["components"] = blobs;

    // Evidence: the normalised photo (colour) with the boxes.
    cv::Mat rgb(photo.height, photo.width, CV_8UC3, const_cast<uint8_t*>(photo.rgb.data()));
    cv::Mat small;
    cv::resize(rgb, small, cv::Size(c.width, c.height), 0, 0, cv::INTER_AREA);
    out.annotated.width = c.width;
    out.annotated.height = c.height;
    out.annotated.rgb.assign(small.data, small.data + small.total() * 3);
    draw_defects(out.annotated, out.defects, fx, fy);
    return out;
  }

 private:
  CameraConfig config_;
  static constexpr float kFixed = 64.0f;
  std::vector<uint16_t> golden_;  // grey x kFixed
};

}  // namespace

std::vector<float> preprocess_gray(const Image& photo, const CameraConfig& config) {
  MMFUSE_CHECK(photo.width > 0 && photo.height > 0 &&
                   photo.rgb.size() == static_cast<size_t>(photo.width) * photo.height * 3,
               bad_input, "camera: empty or malformed image");
  cv::Mat rgb(photo.height, photo.width, CV_8UC3, const_cast<uint8_t*>(photo.rgb.data()));
  cv::Mat gray, small, f;
  cv::cvtColor(rgb, gray, cv::COLOR_RGB2GRAY);
  // Resize first (area averaging is itself a low-pass filter), then the
  // chapter's Gaussian denoise at the normalised size: the same smoothing of
  // the result as denoise-then-resize, at a fraction of the cost on 4K frames.
  const int interp = (photo.width >= config.width && photo.height >= config.height)
                         ? cv::INTER_AREA
                         : cv::INTER_LINEAR;
  cv::resize(gray, small, cv::Size(config.width, config.height), 0, 0, interp);
  small.convertTo(f, CV_32F);
  if (config.blur_sigma > 0) cv::GaussianBlur(f, f, cv::Size(0, 0), config.blur_sigma);
  std::vector<float> out(static_cast<size_t>(config.width) * config.height);
  std::memcpy(out.data(), f.ptr<float>(0), out.size() * sizeof(float));
  return out;
}

std::unique_ptr<DefectDetector> make_golden_diff_detector(const CameraConfig& config) {
  return std::make_unique<GoldenDiffDetector>(config);
}

}  // namespace mmfuse::inspect
