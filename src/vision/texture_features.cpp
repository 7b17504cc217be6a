#include "vision/texture_features.h"

#include <algorithm>
#include <cmath>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "mmfuse/error.h"

namespace mmfuse {

std::vector<float> grey_levels(const Image& image) {
  const size_t n = static_cast<size_t>(image.width) * static_cast<size_t>(image.height);
  std::vector<float> grey(n);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = image.rgb.data() + 3 * i;
    grey[i] = 0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2];
  }
  return grey;
}

PatchGrid texture_features(const Image& image, const TextureFeatureConfig& config) {
  const int stride = config.stride;
  MMFUSE_CHECK(stride > 0 && !config.sigmas.empty(), bad_input,
               "texture features: stride and scales must be positive");
  MMFUSE_CHECK(image.width >= stride && image.height >= stride, bad_input,
               "texture features: image of " + std::to_string(image.width) + "x" +
                   std::to_string(image.height) + " is smaller than one " +
                   std::to_string(stride) + "-pixel cell");
  std::vector<float> grey = grey_levels(image);
  double mean = 0.0;
  for (float v : grey) mean += v;
  mean /= static_cast<double>(grey.size());
  // Exposure: divide by the mean grey level (at least 1 so a black photo stays finite).
  const float gain = static_cast<float>(1.0 / std::max(mean, 1.0));
  for (float& v : grey) v *= gain;
  const cv::Mat x(image.height, image.width, CV_32F, grey.data());

  PatchGrid grid;
  grid.rows = image.height / stride;
  grid.cols = image.width / stride;
  grid.dim = config.dim();
  grid.values.assign(grid.count() * static_cast<size_t>(grid.dim), 0.0f);
  cv::Mat g, d;
  int channel = 0;
  grid.statistics.reserve(static_cast<size_t>(config.statistics_dim()));
  // Percentiles (linear interpolation between order statistics) of a map,
  // over every other row and column (a quarter of the pixels is plenty and
  // keeps scoring fast); increasing quantiles, each found by a partial
  // selection on what lies above the previous one.
  std::vector<float> buf;
  auto percentiles = [&](const cv::Mat& m, float scale, std::initializer_list<double> qs, std::vector<float>& out) {
    buf.clear();
    for (int y = 0; y < m.rows; y += 2) {
      const float* row = m.ptr<float>(y);
      for (int xx = 0; xx < m.cols; xx += 2) buf.push_back(row[xx]);
    }
    size_t start = 0;
    for (double q : qs) {
      const double pos = q / 100.0 * static_cast<double>(buf.size() - 1);
      const size_t lo = static_cast<size_t>(pos);
      if (lo >= start) std::nth_element(buf.begin() + static_cast<std::ptrdiff_t>(start),
                                        buf.begin() + static_cast<std::ptrdiff_t>(lo), buf.end());
      start = lo + 1;
      const float above = lo + 1 < buf.size() ? *std::min_element(buf.begin() + static_cast<std::ptrdiff_t>(lo + 1), buf.end())
                                              : buf[lo];
      out.push_back(scale * static_cast<float>(buf[lo] + (pos - static_cast<double>(lo)) * (above - buf[lo])));
    }
  };
  auto stats = [&](const cv::Mat& m, float scale) { percentiles(m, scale, {0.1, 1, 5, 50, 95, 99, 99.9}, grid.statistics); };
  cv::Mat energy;
  auto sample = [&](const cv::Mat& m, float scale) {
    for (int r = 0; r < grid.rows; ++r) {
      const float* row = m.ptr<float>(r * stride + stride / 2);
      float* out = grid.values.data() + static_cast<size_t>(r) * grid.cols * grid.dim + channel;
      for (int c = 0; c < grid.cols; ++c) out[static_cast<size_t>(c) * grid.dim] = scale * row[c * stride + stride / 2];
    }
    ++channel;
  };
  // Photo-aligned grid: each response area-averaged over G x G cells, and
  // each derivative's magnitude too (its local energy: a crack or a blowhole
  // rim raises it whatever its sign).
  const int pg = std::max(0, config.position_grid);
  const int adim = config.aligned_dim();
  grid.aligned_grid = pg;
  grid.aligned_dim = pg > 0 ? adim : 0;
  grid.aligned.assign(static_cast<size_t>(pg) * pg * static_cast<size_t>(grid.aligned_dim), 0.0f);
  int signed_channel = 0, magnitude_channel = grid.dim;
  cv::Mat area, magnitude;
  auto area_into = [&](const cv::Mat& m, float scale, int at) {
    cv::resize(m, area, cv::Size(pg, pg), 0, 0, cv::INTER_AREA);
    for (int r = 0; r < pg; ++r) {
      const float* row = area.ptr<float>(r);
      float* out = grid.aligned.data() + static_cast<size_t>(r) * pg * adim + at;
      for (int c = 0; c < pg; ++c) out[static_cast<size_t>(c) * adim] = scale * row[c];
    }
  };
  auto align = [&](const cv::Mat& m, float scale, bool with_magnitude) {
    if (pg == 0) return;
    area_into(m, scale, signed_channel++);
    if (!with_magnitude) return;
    magnitude = cv::abs(m);
    area_into(magnitude, scale, magnitude_channel++);
  };
  for (float sigma : config.sigmas) {
    // Reflected borders (OpenCV's default BORDER_REFLECT_101) for all filters.
    cv::GaussianBlur(x, g, cv::Size(0, 0), sigma, sigma);
    sample(g, 1.0f);
    align(g, 1.0f, false);
    stats(g, 1.0f);
    // Sobel 3x3 sums 8 (first) / 4 (second derivative) times the central
    // difference; multiplying by sigma^order makes responses scale-normalised.
    cv::Sobel(g, d, CV_32F, 1, 0, 3);
    sample(d, sigma / 8.0f);
    align(d, sigma / 8.0f, true);
    stats(d, sigma / 8.0f);
    // Local gradient energy (|d/dx| over ~8 px): how unevenly the streaks run.
    cv::GaussianBlur(cv::abs(d) * (sigma / 8.0f), energy, cv::Size(0, 0), 8.0, 8.0);
    cv::Sobel(g, d, CV_32F, 0, 1, 3);
    sample(d, sigma / 8.0f);
    align(d, sigma / 8.0f, true);
    stats(d, sigma / 8.0f);
    cv::Sobel(g, d, CV_32F, 2, 0, 3);
    sample(d, sigma * sigma / 4.0f);
    align(d, sigma * sigma / 4.0f, true);
    stats(d, sigma * sigma / 4.0f);
    cv::Sobel(g, d, CV_32F, 0, 2, 3);
    sample(d, sigma * sigma / 4.0f);
    align(d, sigma * sigma / 4.0f, true);
    stats(d, sigma * sigma / 4.0f);
    cv::Sobel(g, d, CV_32F, 1, 1, 3);
    sample(d, sigma * sigma / 4.0f);
    align(d, sigma * sigma / 4.0f, true);
    stats(d, sigma * sigma / 4.0f);
    percentiles(energy, 1.0f, {1, 50, 99}, grid.statistics);
  }
  // Coherence of the structure tensor J = G_rho * (grad grad^T), rho = 2 sigma:
  // sqrt((Jxx - Jyy)^2 + 4 Jxy^2) / (Jxx + Jyy).
  cv::Mat gx, gy, jxx, jyy, jxy, coherence;
  for (int k = 0; k < TextureFeatureConfig::kStructureScales; ++k) {
    const float sigma = static_cast<float>(1 << k), rho = 2.0f * sigma;
    cv::GaussianBlur(x, g, cv::Size(0, 0), sigma, sigma);
    cv::Sobel(g, gx, CV_32F, 1, 0, 3, sigma / 8.0f);
    cv::Sobel(g, gy, CV_32F, 0, 1, 3, sigma / 8.0f);
    cv::GaussianBlur(gx.mul(gx), jxx, cv::Size(0, 0), rho, rho);
    cv::GaussianBlur(gy.mul(gy), jyy, cv::Size(0, 0), rho, rho);
    cv::GaussianBlur(gx.mul(gy), jxy, cv::Size(0, 0), rho, rho);
    coherence.create(x.size(), CV_32F);
    for (int y = 0; y < x.rows; ++y) {
      const float *a = jxx.ptr<float>(y), *b = jyy.ptr<float>(y), *c = jxy.ptr<float>(y);
      float* out = coherence.ptr<float>(y);
      for (int i = 0; i < x.cols; ++i)
        out[i] = std::sqrt((a[i] - b[i]) * (a[i] - b[i]) + 4.0f * c[i] * c[i]) / (a[i] + b[i] + 1e-6f);
    }
    percentiles(coherence, 1.0f, {1, 5, 10, 25, 50, 75, 90}, grid.structure);
  }
  return grid;
}

}  // namespace mmfuse
