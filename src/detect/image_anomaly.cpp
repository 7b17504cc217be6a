#include "detect/image_anomaly.h"
#include "io/atomic_file.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <numeric>
#include <random>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "core/gemm.h"
#include "io/digest.h"
#include "io/model_folder.h"
#include "io/safetensors.h"
#include "mmfuse/error.h"
#include "vision/image_encode.h"

namespace mmfuse {

namespace fs = std::filesystem;

namespace {

constexpr const char* kModelType = "image_patchcore";
constexpr const char* kWeightsFile = "model.safetensors";
constexpr int kQueryChunk = 64;  // query rows per distance GEMM

std::vector<uint8_t> as_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(float));
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// Per-dimension mean and 1 / standard deviation over every patch of the photos.
void standardisation(const std::vector<const PatchGrid*>& grids, int dim, std::vector<float>& mean,
                     std::vector<float>& inv_scale) {
  std::vector<double> sum(dim, 0.0), sq(dim, 0.0);
  size_t n = 0;
  for (const PatchGrid* g : grids) {
    for (size_t i = 0; i < g->values.size(); ++i) sum[i % dim] += g->values[i];
    n += g->count();
  }
  mean.assign(dim, 0.0f);
  for (int j = 0; j < dim; ++j) mean[j] = static_cast<float>(sum[j] / static_cast<double>(n));
  for (const PatchGrid* g : grids)
    for (size_t i = 0; i < g->values.size(); ++i) {
      const double d = g->values[i] - mean[i % dim];
      sq[i % dim] += d * d;
    }
  inv_scale.assign(dim, 1.0f);
  for (int j = 0; j < dim; ++j)
    inv_scale[j] = static_cast<float>(1.0 / (std::sqrt(sq[j] / static_cast<double>(n)) + 1e-6));
}

// Greedy k-center selection (PatchCore's coreset): repeatedly keep the
// candidate farthest from everything kept so far, so rare good patches stay
// in the bank. Returns the kept rows of `x` [m, dim].
std::vector<float> greedy_coreset(ThreadPool& pool, const std::vector<float>& x, int dim,
                                  size_t keep, std::mt19937_64& rng) {
  const size_t m = x.size() / dim;
  if (m <= keep) return x;
  std::vector<float> min_d(m, std::numeric_limits<float>::infinity());
  std::vector<float> out;
  out.reserve(keep * dim);
  size_t last = std::uniform_int_distribution<size_t>(0, m - 1)(rng);
  const int workers = pool.size();
  std::vector<std::pair<float, size_t>> best(workers);
  for (size_t kept = 0; kept < keep; ++kept) {
    out.insert(out.end(), x.begin() + last * dim, x.begin() + (last + 1) * dim);
    const float* c = x.data() + last * dim;
    std::fill(best.begin(), best.end(), std::make_pair(-1.0f, size_t{0}));
    pool.parallel_for(m, [&](size_t begin, size_t end, int w) {
      std::pair<float, size_t> b{-1.0f, 0};
      for (size_t i = begin; i < end; ++i) {
        const float* p = x.data() + i * dim;
        float d = 0.0f;
        for (int j = 0; j < dim; ++j) d += (p[j] - c[j]) * (p[j] - c[j]);
        const float v = std::min(min_d[i], d);
        min_d[i] = v;
        if (v > b.first) b = {v, i};
      }
      if (b.first > best[w].first) best[w] = b;
    });
    auto it = std::max_element(best.begin(), best.end(),
                               [](const auto& a, const auto& b) { return a.first < b.first; });
    last = it->second;
  }
  return out;
}

// One standardised row per good photo of a photo-level statistic vector.
void fit_photo_rows(const std::vector<const PatchGrid*>& grids, std::vector<float> PatchGrid::*field,
                    PhotoBank& out) {
  PatchGrid rows;
  rows.dim = static_cast<int>((grids[0]->*field).size());
  rows.rows = static_cast<int>(grids.size());
  rows.cols = 1;
  for (const PatchGrid* g : grids) rows.values.insert(rows.values.end(), (g->*field).begin(), (g->*field).end());
  standardisation({&rows}, rows.dim, out.mean, out.inv_scale);
  out.bank.resize(rows.values.size());
  for (size_t i = 0; i < rows.values.size(); ++i)
    out.bank[i] = (rows.values[i] - out.mean[i % rows.dim]) * out.inv_scale[i % rows.dim];
}

// The bank's tensors, named PREFIX_bank, PREFIX_mean and PREFIX_inv_scale.
void append_photo_bank(std::vector<TensorToWrite>& tensors, const std::string& prefix, const PhotoBank& b) {
  const int64_t d = static_cast<int64_t>(b.mean.size());
  tensors.push_back({prefix + "_bank", DType::F32, {static_cast<int64_t>(b.bank.size()) / d, d}, as_bytes(b.bank)});
  tensors.push_back({prefix + "_mean", DType::F32, {d}, as_bytes(b.mean)});
  tensors.push_back({prefix + "_inv_scale", DType::F32, {d}, as_bytes(b.inv_scale)});
}

void load_photo_bank(WeightStore& store, const std::string& prefix, int64_t photos, int64_t d, PhotoBank& b) {
  const float* bank = store.f32(prefix + "_bank", {photos, d});
  const float* mean = store.f32(prefix + "_mean", {d});
  const float* inv = store.f32(prefix + "_inv_scale", {d});
  b.bank.assign(bank, bank + static_cast<size_t>(photos * d));
  b.mean.assign(mean, mean + d);
  b.inv_scale.assign(inv, inv + d);
}

// Log squared distance of a photo's standardised statistics to the nearest
// good photo's (distances between whole photos spread over orders of magnitude).
double nearest_photo_log_distance(const std::vector<float>& x, const PhotoBank& b, const char* what) {
  const std::vector<float>& mean = b.mean;
  const std::vector<float>& inv_scale = b.inv_scale;
  const std::vector<float>& bank = b.bank;
  const size_t d = mean.size();
  MMFUSE_CHECK(d > 0 && x.size() == d, bad_input,
               std::string("image score: ") + what + " of size " + std::to_string(x.size()) +
                   " differ from the model's " + std::to_string(d));
  std::vector<float> z(d);
  for (size_t j = 0; j < d; ++j) z[j] = (x[j] - mean[j]) * inv_scale[j];
  double best = std::numeric_limits<double>::infinity();
  for (size_t r = 0; r < bank.size() / d; ++r) {
    double s = 0.0;
    for (size_t j = 0; j < d; ++j) {
      const double diff = z[j] - bank[r * d + j];
      s += diff * diff;
    }
    best = std::min(best, s);
  }
  return std::log(std::max(best, 1e-9));
}

// PaDiM's per-position Gaussian over the photo-aligned descriptors of `grids`.
PositionGaussian fit_position_gaussian(ThreadPool& pool, const std::vector<const PatchGrid*>& grids,
                                       int neighbourhood, float shrinkage) {
  PositionGaussian pg;
  pg.grid = grids[0]->aligned_grid;
  pg.dim = grids[0]->aligned_dim;
  const int d = pg.dim;
  const size_t cells = static_cast<size_t>(pg.grid) * pg.grid, n = grids.size();
  // Standardisation over every aligned cell of every photo.
  std::vector<double> sum(d, 0.0), sq(d, 0.0);
  for (const PatchGrid* g : grids)
    for (size_t i = 0; i < g->aligned.size(); ++i) sum[i % d] += g->aligned[i];
  const double count = static_cast<double>(cells * n);
  pg.mean.resize(d);
  for (int j = 0; j < d; ++j) pg.mean[j] = static_cast<float>(sum[j] / count);
  for (const PatchGrid* g : grids)
    for (size_t i = 0; i < g->aligned.size(); ++i) {
      const double v = g->aligned[i] - pg.mean[i % d];
      sq[i % d] += v * v;
    }
  pg.inv_scale.resize(d);
  for (int j = 0; j < d; ++j) pg.inv_scale[j] = static_cast<float>(1.0 / (std::sqrt(sq[j] / count) + 1e-6));
  // Per cell: mean and (biased) covariance over the photos.
  const size_t dd = static_cast<size_t>(d) * d;
  pg.centre.assign(cells * d, 0.0f);
  std::vector<double> cov(cells * dd, 0.0);
  pool.parallel_for(cells, [&](size_t begin, size_t end, int) {
    std::vector<double> z(n * d), mu(d);
    for (size_t c = begin; c < end; ++c) {
      std::fill(mu.begin(), mu.end(), 0.0);
      for (size_t k = 0; k < n; ++k)
        for (int j = 0; j < d; ++j) {
          z[k * d + j] = (grids[k]->aligned[c * d + j] - pg.mean[j]) * pg.inv_scale[j];
          mu[j] += z[k * d + j];
        }
      for (int j = 0; j < d; ++j) mu[j] /= static_cast<double>(n);
      double* out = cov.data() + c * dd;
      for (size_t k = 0; k < n; ++k)
        for (int a = 0; a < d; ++a) {
          const double da = z[k * d + a] - mu[a];
          for (int b = 0; b < d; ++b) out[a * d + b] += da * (z[k * d + b] - mu[b]);
        }
      for (size_t i = 0; i < dd; ++i) out[i] /= static_cast<double>(n);
      for (int j = 0; j < d; ++j) pg.centre[c * d + j] = static_cast<float>(mu[j]);
    }
  });
  // Covariance pooled over the (2 r + 1)^2 neighbouring cells (edges
  // replicated), shrunk towards tr / d * I, inverted; the inverse's upper
  // triangle is kept (row by row).
  const size_t packed = static_cast<size_t>(d) * (d + 1) / 2;
  pg.precision.assign(cells * packed, 0.0f);
  const int r = std::max(0, neighbourhood), side = pg.grid;
  pool.parallel_for(cells, [&](size_t begin, size_t end, int) {
    cv::Mat pooled(d, d, CV_64F), inv;
    for (size_t c = begin; c < end; ++c) {
      const int y = static_cast<int>(c) / side, x = static_cast<int>(c) % side;
      pooled.setTo(cv::Scalar(0));
      double* p = pooled.ptr<double>(0);
      for (int dy = -r; dy <= r; ++dy)
        for (int dx = -r; dx <= r; ++dx) {
          const int yy = std::clamp(y + dy, 0, side - 1), xx = std::clamp(x + dx, 0, side - 1);
          const double* q = cov.data() + (static_cast<size_t>(yy) * side + xx) * dd;
          for (size_t i = 0; i < dd; ++i) p[i] += q[i];
        }
      const double k = static_cast<double>((2 * r + 1) * (2 * r + 1));
      double trace = 0.0;
      for (int j = 0; j < d; ++j) trace += p[j * d + j] / k;
      const double target = std::max(trace / d, 1e-6);
      for (size_t i = 0; i < dd; ++i) p[i] *= (1.0 - shrinkage) / k;
      for (int j = 0; j < d; ++j) p[j * d + j] += shrinkage * target;
      cv::invert(pooled, inv, cv::DECOMP_CHOLESKY);
      const double* iv = inv.ptr<double>(0);
      float* out = pg.precision.data() + c * packed;
      for (int a = 0; a < d; ++a)
        for (int b = a; b < d; ++b) *out++ = static_cast<float>(0.5 * (iv[a * d + b] + iv[b * d + a]));
    }
  });
  return pg;
}

// Bilinear value of a side x side map at fractional cell coordinates (y, x),
// clamped at the edges.
float bilinear(const std::vector<float>& m, int side, double y, double x) {
  y = std::clamp(y, 0.0, static_cast<double>(side - 1));
  x = std::clamp(x, 0.0, static_cast<double>(side - 1));
  const int y0 = static_cast<int>(y), x0 = static_cast<int>(x);
  const int y1 = std::min(y0 + 1, side - 1), x1 = std::min(x0 + 1, side - 1);
  const double fy = y - y0, fx = x - x0;
  auto at = [&](int yy, int xx) { return static_cast<double>(m[static_cast<size_t>(yy) * side + xx]); };
  return static_cast<float>((1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) +
                            fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1)));
}

// Median shift (subtract_median) and the mean of the top_k cells.
double shift_and_top(std::vector<float>& cells, bool subtract_median, int top_k) {
  std::vector<float> sorted = cells;
  std::sort(sorted.begin(), sorted.end());
  if (subtract_median) {
    // Per-photo normalisation: the median cell is the photo's own "normal".
    const float median = sorted.size() % 2 ? sorted[sorted.size() / 2]
                                           : 0.5f * (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]);
    for (float& v : cells) v -= median;
    for (float& v : sorted) v -= median;
  }
  const size_t k = std::min<size_t>(static_cast<size_t>(std::max(1, top_k)), sorted.size());
  double top = 0.0;
  for (size_t i = sorted.size() - k; i < sorted.size(); ++i) top += sorted[i];
  return top / static_cast<double>(k);
}

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

}  // namespace

struct ImageAnomalyBuilder {
  // A model fitted on grids[idx] (standardisation, candidates, coreset).
  static ImageAnomalyModel build(ThreadPool& pool, const std::vector<PatchGrid>& grids,
                                 const std::vector<size_t>& idx, const ImageAnomalyConfig& config,
                                 uint64_t seed);
};

ImageAnomalyModel ImageAnomalyBuilder::build(ThreadPool& pool, const std::vector<PatchGrid>& grids,
                                             const std::vector<size_t>& idx,
                                             const ImageAnomalyConfig& config, uint64_t seed) {
  const int dim = grids[idx[0]].dim;
  std::vector<const PatchGrid*> chosen;
  size_t total = 0;
  for (size_t i : idx) {
    chosen.push_back(&grids[i]);
    total += grids[i].count();
  }
  ImageAnomalyModel m;
  m.config_ = config;
  m.dim_ = dim;
  m.training_images_ = idx.size();
  if (config.position_gaussian)
    m.position_ = fit_position_gaussian(pool, chosen, config.position_neighbourhood, config.position_shrinkage);
  // One row per good photo, standardised like the patches.
  if (config.photo_statistics)
    fit_photo_rows(chosen, &PatchGrid::statistics, m.stats_);
  if (config.structure_statistics)
    fit_photo_rows(chosen, &PatchGrid::structure, m.structure_);
  if (!config.patch_knn) return m;
  standardisation(chosen, dim, m.mean_, m.inv_scale_);
  // Candidates: every patch, or a seeded random subset of them.
  std::mt19937_64 rng(seed);
  std::vector<size_t> order(total);
  std::iota(order.begin(), order.end(), size_t{0});
  const size_t cand = std::min(total, static_cast<size_t>(config.coreset_candidates));
  if (cand < total)
    for (size_t i = 0; i < cand; ++i)
      std::swap(order[i], order[std::uniform_int_distribution<size_t>(i, total - 1)(rng)]);
  order.resize(cand);
  std::sort(order.begin(), order.end());
  std::vector<float> x(cand * dim);
  size_t base = 0, gi = 0, k = 0;
  for (size_t o : order) {
    while (o >= base + chosen[gi]->count()) base += chosen[gi++]->count();
    const float* p = chosen[gi]->values.data() + (o - base) * dim;
    for (int j = 0; j < dim; ++j) x[k * dim + j] = (p[j] - m.mean_[j]) * m.inv_scale_[j];
    ++k;
  }
  m.bank_ = greedy_coreset(pool, x, dim, static_cast<size_t>(config.bank_size), rng);
  const size_t rows = m.bank_.size() / dim;
  m.bank_norms_.resize(rows);
  for (size_t r = 0; r < rows; ++r) {
    float s = 0.0f;
    for (int j = 0; j < dim; ++j) s += m.bank_[r * dim + j] * m.bank_[r * dim + j];
    m.bank_norms_[r] = s;
  }
  return m;
}

ImageAnomalyModel ImageAnomalyModel::fit(ThreadPool& pool, const std::vector<PatchGrid>& good,
                                         const ImageAnomalyConfig& config,
                                         ImageCalibration* calibration) {
  MMFUSE_CHECK(good.size() >= 2, bad_input,
               "image fit: at least 2 good photos are needed (got " + std::to_string(good.size()) + ")");
  MMFUSE_CHECK(config.bank_size > 0 && config.coreset_candidates >= config.bank_size &&
                   config.folds >= 2 && config.false_alarm_rate > 0 && config.false_alarm_rate < 1,
               bad_input, "image fit: invalid settings");
  MMFUSE_CHECK(config.patch_knn || config.position_gaussian || config.photo_statistics || config.structure_statistics,
               bad_input, "image fit: no term is switched on");
  MMFUSE_CHECK(config.position_shrinkage > 0 && config.position_shrinkage <= 1 && config.position_neighbourhood >= 0,
               bad_input, "image fit: position_shrinkage must lie in (0, 1], position_neighbourhood >= 0");
  for (const auto& g : good)
    MMFUSE_CHECK(g.dim == good[0].dim && g.count() > 0 && g.statistics.size() == good[0].statistics.size() &&
                     g.structure.size() == good[0].structure.size() &&
                     (!config.photo_statistics || !g.statistics.empty()) &&
                     (!config.structure_statistics || !g.structure.empty()) &&
                     g.aligned_grid == good[0].aligned_grid && g.aligned_dim == good[0].aligned_dim &&
                     g.aligned.size() == static_cast<size_t>(g.aligned_grid) * g.aligned_grid * g.aligned_dim &&
                     (!config.position_gaussian || g.aligned_grid > 0),
                 bad_input, "image fit: photos have descriptors of different sizes");
  // Threshold: k-fold over photos (seeded shuffle), each held-out photo scored
  // by a model of the other folds.
  const int folds = std::min<int>(config.folds, static_cast<int>(good.size()));
  std::vector<size_t> perm(good.size());
  std::iota(perm.begin(), perm.end(), size_t{0});
  std::shuffle(perm.begin(), perm.end(), std::mt19937_64(config.seed));
  std::vector<double> held_patch(good.size(), 0.0), held_photo(good.size(), 0.0), held_structure(good.size(), 0.0),
      held_position(good.size(), 0.0);
  for (int f = 0; f < folds; ++f) {
    std::vector<size_t> train, test;
    for (size_t i = 0; i < perm.size(); ++i) (static_cast<int>(i % folds) == f ? test : train).push_back(perm[i]);
    const ImageAnomalyModel fm = ImageAnomalyBuilder::build(pool, good, train, config, config.seed + 1 + f);
    pool.parallel_tasks(test.size(), [&](size_t t, int) {
      const PatchGrid& g = good[test[t]];
      if (config.patch_knn) held_patch[test[t]] = fm.patch_map(g).score;
      if (config.position_gaussian) held_position[test[t]] = fm.position_map(g).score;
      if (config.photo_statistics) held_photo[test[t]] = fm.photo_term(g);
      if (config.structure_statistics) held_structure[test[t]] = fm.structure_term(g);
    });
  }
  std::vector<size_t> all(good.size());
  std::iota(all.begin(), all.end(), size_t{0});
  ImageAnomalyModel m = ImageAnomalyBuilder::build(pool, good, all, config, config.seed);
  std::vector<double> held = held_patch;
  if (m.has_photo_terms()) {
    // Each term in units of its spread over held-out good photos (median, SD).
    auto centre_spread = [](const std::vector<double>& v, double& centre, double& spread) {
      centre = quantile(v, 0.5);
      double mean = 0.0, sq = 0.0;
      for (double x : v) mean += x;
      mean /= static_cast<double>(v.size());
      for (double x : v) sq += (x - mean) * (x - mean);
      spread = std::max(std::sqrt(sq / static_cast<double>(v.size())), 1e-6);
    };
    if (config.patch_knn) centre_spread(held_patch, m.patch_centre_, m.patch_spread_);
    if (config.position_gaussian) centre_spread(held_position, m.position_centre_, m.position_spread_);
    if (config.photo_statistics) centre_spread(held_photo, m.photo_centre_, m.photo_spread_);
    if (config.structure_statistics) centre_spread(held_structure, m.structure_centre_, m.structure_spread_);
    for (size_t i = 0; i < held.size(); ++i) {
      held[i] = config.patch_knn ? (held_patch[i] - m.patch_centre_) / m.patch_spread_ : 0.0;
      if (config.position_gaussian) held[i] += (held_position[i] - m.position_centre_) / m.position_spread_;
      if (config.photo_statistics) held[i] += (held_photo[i] - m.photo_centre_) / m.photo_spread_;
      if (config.structure_statistics) held[i] += (held_structure[i] - m.structure_centre_) / m.structure_spread_;
    }
  }
  m.threshold_ = quantile(held, 1.0 - config.false_alarm_rate);
  if (calibration) {
    calibration->folds = folds;
    calibration->held_out_scores = held;
  }
  return m;
}

AnomalyMap ImageAnomalyModel::score(const PatchGrid& grid) const {
  if (!has_photo_terms()) return patch_map(grid);
  AnomalyMap patch, position;
  if (config_.patch_knn) patch = patch_map(grid);
  if (config_.position_gaussian) position = position_map(grid);
  return combine(grid, config_.patch_knn ? &patch : nullptr, config_.position_gaussian ? &position : nullptr,
                 config_.photo_statistics ? photo_term(grid) : 0.0,
                 config_.structure_statistics ? structure_term(grid) : 0.0);
}

double ImageAnomalyModel::photo_term(const PatchGrid& grid) const {
  return nearest_photo_log_distance(grid.statistics, stats_, "photo statistics");
}

double ImageAnomalyModel::structure_term(const PatchGrid& grid) const {
  return nearest_photo_log_distance(grid.structure, structure_, "structure statistics");
}

AnomalyMap ImageAnomalyModel::combine(const PatchGrid& grid, const AnomalyMap* patch, const AnomalyMap* position,
                                       double photo, double structure) const {
  double p = 0.0;
  if (config_.photo_statistics) p += (photo - photo_centre_) / photo_spread_;
  if (config_.structure_statistics) p += (structure - structure_centre_) / structure_spread_;
  // The map is on the photo's stride grid (the heat-map's cells).
  AnomalyMap map;
  map.rows = grid.rows;
  map.cols = grid.cols;
  map.stride = config_.features.stride;
  map.cells.assign(grid.count(), static_cast<float>(p));
  map.score = p;
  if (patch) {
    for (size_t i = 0; i < map.cells.size(); ++i)
      map.cells[i] += static_cast<float>((patch->cells[i] - patch_centre_) / patch_spread_);
    map.score += (patch->score - patch_centre_) / patch_spread_;
  }
  if (position) {
    // Aligned cell j spans the photo's [j, j + 1) * width / side; the stride
    // grid's cell c is centred on pixel c * stride + stride / 2 of the
    // cols * stride pixels it covers.
    const int side = position->rows;
    const double sy = static_cast<double>(side) / (static_cast<double>(map.rows) * map.stride);
    const double sx = static_cast<double>(side) / (static_cast<double>(map.cols) * map.stride);
    for (int r = 0; r < map.rows; ++r)
      for (int c = 0; c < map.cols; ++c) {
        const double y = (r * map.stride + map.stride / 2 + 0.5) * sy - 0.5;
        const double x = (c * map.stride + map.stride / 2 + 0.5) * sx - 0.5;
        const float v = bilinear(position->cells, side, y, x);
        map.cells[static_cast<size_t>(r) * map.cols + c] +=
            static_cast<float>((v - position_centre_) / position_spread_);
      }
    map.score += (position->score - position_centre_) / position_spread_;
  }
  return map;
}

AnomalyMap ImageAnomalyModel::position_map(const PatchGrid& grid) const {
  const PositionGaussian& pg = position_;
  const int d = pg.dim;
  MMFUSE_CHECK(grid.aligned_dim == d && grid.aligned_grid == pg.grid &&
                   grid.aligned.size() == static_cast<size_t>(pg.grid) * pg.grid * d,
               bad_input,
               "image score: photo-aligned descriptors of " + std::to_string(grid.aligned_grid) + " cells a side" +
                   " differ from the model's " + std::to_string(pg.grid));
  const size_t cells = static_cast<size_t>(pg.grid) * pg.grid, packed = static_cast<size_t>(d) * (d + 1) / 2;
  AnomalyMap map;
  map.rows = map.cols = pg.grid;
  map.cells.resize(cells);
  std::vector<float> z(d);
  for (size_t c = 0; c < cells; ++c) {
    for (int j = 0; j < d; ++j)
      z[j] = (grid.aligned[c * d + j] - pg.mean[j]) * pg.inv_scale[j] - pg.centre[c * d + j];
    // z' P z from the upper triangle: diagonal once, the rest twice.
    const float* prec = pg.precision.data() + c * packed;
    double m = 0.0;
    for (int a = 0; a < d; ++a) {
      float off = 0.0f;
      for (int b = a + 1; b < d; ++b) off += prec[b - a] * z[b];
      m += static_cast<double>(z[a]) * (prec[0] * z[a] + 2.0f * off);
      prec += d - a;
    }
    map.cells[c] = static_cast<float>(std::sqrt(std::max(m, 0.0)));
  }
  map.score = shift_and_top(map.cells, config_.subtract_median, config_.top_k);
  return map;
}

AnomalyMap ImageAnomalyModel::patch_map(const PatchGrid& grid) const {
  MMFUSE_CHECK(grid.dim == dim_, bad_input,
               "image score: descriptor size " + std::to_string(grid.dim) + " differs from the model's " +
                   std::to_string(dim_));
  MMFUSE_CHECK(grid.count() > 0, bad_input, "image score: empty descriptor grid");
  const size_t n = grid.count(), rows = bank_rows();
  const int d = dim_;
  std::vector<float> q(static_cast<size_t>(kQueryChunk) * d), dots(static_cast<size_t>(kQueryChunk) * rows);
  std::vector<float> nearest(n);
  for (size_t s = 0; s < n; s += kQueryChunk) {
    const int m = static_cast<int>(std::min<size_t>(kQueryChunk, n - s));
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < d; ++j)
        q[static_cast<size_t>(i) * d + j] = (grid.values[(s + i) * d + j] - mean_[j]) * inv_scale_[j];
    // ||q - b||^2 = ||q||^2 + ||b||^2 - 2 q.b, the products in one GEMM.
    sgemm(true, m, static_cast<int>(rows), d, -2.0f, q.data(), d, bank_.data(), d, 0.0f, dots.data(),
          static_cast<int>(rows));
    for (int i = 0; i < m; ++i) {
      float qn = 0.0f;
      for (int j = 0; j < d; ++j) qn += q[static_cast<size_t>(i) * d + j] * q[static_cast<size_t>(i) * d + j];
      const float* row = dots.data() + static_cast<size_t>(i) * rows;
      float best = std::numeric_limits<float>::infinity();
      for (size_t r = 0; r < rows; ++r) best = std::min(best, row[r] + bank_norms_[r]);
      nearest[s + i] = std::sqrt(std::max(0.0f, best + qn));
    }
  }
  AnomalyMap map;
  map.rows = grid.rows;
  map.cols = grid.cols;
  map.stride = config_.features.stride;
  if (config_.smooth > 0.0f) {
    cv::Mat src(grid.rows, grid.cols, CV_32F, nearest.data()), dst;
    cv::GaussianBlur(src, dst, cv::Size(0, 0), config_.smooth, config_.smooth);
    map.cells.assign(dst.ptr<float>(0), dst.ptr<float>(0) + n);
  } else {
    map.cells = std::move(nearest);
  }
  map.score = shift_and_top(map.cells, config_.subtract_median, config_.top_k);
  return map;
}

AnomalyMap ImageAnomalyModel::score_image(const Image& image) const {
  if (source_) return score(source_->features(image));
  return score(texture_features(image, config_.features));
}

std::vector<PatchGrid> texture_features_of_files(ThreadPool& pool, const std::vector<fs::path>& files,
                                                 const TextureFeatureConfig& config) {
  std::vector<PatchGrid> out(files.size());
  pool.parallel_tasks(files.size(), [&](size_t i, int) {
    const Image img = decode_image_file(files[i]);
    try {
      out[i] = texture_features(img, config);
    } catch (const Error& e) {
      throw Error(e.kind(), files[i].string() + ": " + e.what());
    }
  });
  return out;
}

std::string heatmap_png(const AnomalyMap& map, int width, int height, double threshold) {
  MMFUSE_CHECK(map.rows > 0 && map.cols > 0 && width > 0 && height > 0, bad_input,
               "heat-map: empty map");
  cv::Mat cells(map.rows, map.cols, CV_32F, const_cast<float*>(map.cells.data()));
  // Cell (r, c) covers pixels [c * stride, (c + 1) * stride): resize the
  // covered area, then pad the uncovered right/bottom strip by replication.
  cv::Mat covered, full;
  cv::resize(cells, covered, cv::Size(map.cols * map.stride, map.rows * map.stride), 0, 0, cv::INTER_LINEAR);
  cv::copyMakeBorder(covered, full, 0, height - covered.rows, 0, width - covered.cols, cv::BORDER_REPLICATE);
  const double scale = threshold > 0 ? 128.0 / threshold : 1.0;
  std::vector<uint8_t> grey(static_cast<size_t>(width) * height);
  for (int y = 0; y < height; ++y) {
    const float* row = full.ptr<float>(y);
    for (int x = 0; x < width; ++x)
      grey[static_cast<size_t>(y) * width + x] =
          static_cast<uint8_t>(std::clamp(std::lround(row[x] * scale), 0L, 255L));
  }
  return encode_png(grey.data(), width, height, 1, 8);
}

nlohmann::json image_anomaly_config_to_json(const ImageAnomalyConfig& c) {
  return {{"features",
           {{"kind", "gaussian_jet"},
            {"sigmas", c.features.sigmas},
            {"stride", c.features.stride},
            {"position_grid", c.features.position_grid}}},
          {"bank_size", c.bank_size},
          {"coreset_candidates", c.coreset_candidates},
          {"smooth", c.smooth},
          {"top_k", c.top_k},
          {"subtract_median", c.subtract_median},
          {"photo_statistics", c.photo_statistics},
          {"structure_statistics", c.structure_statistics},
          {"patch_knn", c.patch_knn},
          {"position_gaussian", c.position_gaussian},
          {"position_neighbourhood", c.position_neighbourhood},
          {"position_shrinkage", c.position_shrinkage},
          {"false_alarm_rate", c.false_alarm_rate},
          {"folds", c.folds},
          {"seed", c.seed}};
}

ImageAnomalyConfig image_anomaly_config_from_json(const nlohmann::json& j, const std::string& where) {
  ImageAnomalyConfig c;
  JsonFields f(j, where);
  MMFUSE_CHECK(j.contains("features") && j["features"].is_object(), bad_input,
               where + ": field \"features\" is missing");
  const auto& fj = j["features"];
  JsonFields ff(fj, where + ": features");
  MMFUSE_CHECK(ff.string("kind", "") == "gaussian_jet", bad_input, where + ": features.kind is not gaussian_jet");
  MMFUSE_CHECK(fj.contains("sigmas") && fj["sigmas"].is_array() && !fj["sigmas"].empty(), bad_input,
               where + ": features.sigmas must be a non-empty list");
  c.features.sigmas.clear();
  for (const auto& s : fj["sigmas"]) {
    MMFUSE_CHECK(s.is_number() && s.get<double>() > 0 && s.get<double>() < 1000, bad_input,
                 where + ": features.sigmas must be positive numbers");
    c.features.sigmas.push_back(s.get<float>());
  }
  c.features.stride = ff.positive("stride", c.features.stride);
  // Folders before format 5 have no photo-aligned grid.
  const int64_t position_grid = ff.integer("position_grid", 0);
  MMFUSE_CHECK(position_grid >= 0 && position_grid <= 1024, bad_input,
               where + ": features.position_grid must lie in 0..1024");
  c.features.position_grid = static_cast<int>(position_grid);
  c.bank_size = f.positive("bank_size", c.bank_size);
  c.coreset_candidates = f.positive("coreset_candidates", c.coreset_candidates);
  c.smooth = static_cast<float>(f.number("smooth", c.smooth));
  MMFUSE_CHECK(c.smooth >= 0 && c.smooth < 100, bad_input, where + ": smooth out of range");
  c.top_k = f.positive("top_k", c.top_k);
  MMFUSE_CHECK(!j.contains("subtract_median") || j["subtract_median"].is_boolean(), bad_input,
               where + ": subtract_median must be true or false");
  c.subtract_median = j.value("subtract_median", c.subtract_median);
  MMFUSE_CHECK(!j.contains("photo_statistics") || j["photo_statistics"].is_boolean(), bad_input,
               where + ": photo_statistics must be true or false");
  c.photo_statistics = j.value("photo_statistics", c.photo_statistics);
  MMFUSE_CHECK(!j.contains("structure_statistics") || j["structure_statistics"].is_boolean(), bad_input,
               where + ": structure_statistics must be true or false");
  c.structure_statistics = j.value("structure_statistics", c.structure_statistics);
  for (const char* key : {"patch_knn", "position_gaussian"})
    MMFUSE_CHECK(!j.contains(key) || j[key].is_boolean(), bad_input,
                 where + ": " + key + " must be true or false");
  c.patch_knn = j.value("patch_knn", c.patch_knn);
  c.position_gaussian = j.value("position_gaussian", c.position_gaussian);
  const int64_t neighbourhood = f.integer("position_neighbourhood", c.position_neighbourhood);
  MMFUSE_CHECK(neighbourhood >= 0 && neighbourhood <= 64, bad_input,
               where + ": position_neighbourhood must lie in 0..64");
  c.position_neighbourhood = static_cast<int>(neighbourhood);
  const double shrinkage = f.number("position_shrinkage", c.position_shrinkage);
  MMFUSE_CHECK(shrinkage > 0 && shrinkage <= 1, bad_input, where + ": position_shrinkage must lie in (0, 1]");
  c.position_shrinkage = static_cast<float>(shrinkage);
  MMFUSE_CHECK(!c.position_gaussian || c.features.position_grid > 0, bad_input,
               where + ": position_gaussian needs features.position_grid > 0");
  c.false_alarm_rate = f.number("false_alarm_rate", c.false_alarm_rate);
  c.folds = f.positive("folds", c.folds);
  c.seed = static_cast<uint64_t>(std::max<int64_t>(0, f.integer("seed", 0)));
  return c;
}

void ImageAnomalyModel::save(const fs::path& dir) const {
  MMFUSE_CHECK(training_images_ > 0, internal, "image model: nothing fitted");
  const fs::path target = fs::absolute(dir);
  const fs::path tmp = target.string() + ".tmp-write";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  MMFUSE_CHECK(fs::create_directories(tmp, ec) || fs::is_directory(tmp), bad_input,
               tmp.string() + ": cannot create the folder: " + ec.message());
  try {
    const int64_t rows = static_cast<int64_t>(bank_rows());
    std::vector<TensorToWrite> tensors;
    if (config_.patch_knn) {
      tensors.push_back({"bank", DType::F32, {rows, dim_}, as_bytes(bank_)});
      tensors.push_back({"mean", DType::F32, {dim_}, as_bytes(mean_)});
      tensors.push_back({"inv_scale", DType::F32, {dim_}, as_bytes(inv_scale_)});
    }
    if (config_.position_gaussian) {
      const int64_t cells = static_cast<int64_t>(position_.grid) * position_.grid, d = position_.dim;
      tensors.push_back({"position_mean", DType::F32, {d}, as_bytes(position_.mean)});
      tensors.push_back({"position_inv_scale", DType::F32, {d}, as_bytes(position_.inv_scale)});
      tensors.push_back({"position_centre", DType::F32, {cells, d}, as_bytes(position_.centre)});
      tensors.push_back({"position_precision", DType::F32, {cells, d * (d + 1) / 2}, as_bytes(position_.precision)});
    }
    if (config_.photo_statistics) append_photo_bank(tensors, "stats", stats_);
    if (config_.structure_statistics) append_photo_bank(tensors, "structure", structure_);
    write_safetensors(tmp / kWeightsFile, tensors);
    std::ifstream in(tmp / kWeightsFile, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    nlohmann::json config = image_anomaly_config_to_json(config_);
    if (source_) config["features"] = source_->to_json();
    config = {{"model_type", kModelType},
              {"format_version", kFormatVersion},
              {"dim", dim_},
              {"bank_rows", rows},
              {"threshold", threshold_},
              {"terms", {{"patch_centre", patch_centre_}, {"patch_spread", patch_spread_},
                         {"photo_centre", photo_centre_}, {"photo_spread", photo_spread_},
                         {"structure_centre", structure_centre_}, {"structure_spread", structure_spread_},
                         {"position_centre", position_centre_}, {"position_spread", position_spread_}}},
              {"training_images", training_images_},
              {"settings", config},
              {"manifest", {{kWeightsFile, {{"bytes", bytes.size()}, {"sha256", sha256_hex(bytes.data(), bytes.size())}}}}}};
    std::ofstream out(tmp / "config.json");
    out << config.dump(2) << "\n";
    out.close();
    MMFUSE_CHECK(out.good(), internal, (tmp / "config.json").string() + ": write failed");
    // Swap the finished folder in: a failure never leaves a half-written model.
    replace_folder(tmp, target);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

ImageAnomalyModel ImageAnomalyModel::load(const fs::path& dir) {
  const fs::path config_path = dir / "config.json";
  const std::string where = config_path.string();
  const nlohmann::json j = read_json_file(config_path);
  MMFUSE_CHECK(j.is_object(), bad_input, where + ": not a JSON object");
  JsonFields f(j, where);
  MMFUSE_CHECK(f.string("model_type", "") == kModelType, bad_input,
               where + ": model_type is not \"" + kModelType + "\" (not an image anomaly model)");
  const int64_t version = f.integer("format_version", -1);
  MMFUSE_CHECK(version >= 1 && version <= kFormatVersion, bad_input,
               where + ": format_version " + std::to_string(version) + " is not supported (this build reads " +
                   std::to_string(kFormatVersion) + "; refit the model)");
  MMFUSE_CHECK(j.contains("settings") && j["settings"].is_object(), bad_input,
               where + ": field \"settings\" is missing");
  ImageAnomalyModel m;
  nlohmann::json settings = j["settings"];
  if (version == 1) {
    // Version 1 scored the plain maximum of the map.
    settings["top_k"] = 1;
    settings["subtract_median"] = false;
  }
  if (version <= 2) settings["photo_statistics"] = false;  // no photo term before version 3
  if (version <= 3) settings["structure_statistics"] = false;  // no structure term before version 4
  if (version <= 4) {
    // Before version 5: the k-NN term always, no position term.
    settings["patch_knn"] = true;
    settings["position_gaussian"] = false;
    if (settings.contains("features") && settings["features"].is_object()) settings["features"]["position_grid"] = 0;
  }
  if (settings.contains("features") && is_backbone_features_json(settings["features"])) {
    m.source_ = backbone_features_from_json(settings["features"], where + ": settings.features");
    settings["features"] = image_anomaly_config_to_json(ImageAnomalyConfig{})["features"];  // unused
  }
  m.config_ = image_anomaly_config_from_json(settings, where + ": settings");
  if (m.source_) m.config_.features.stride = m.source_->stride();  // the heat-map's cell size
  m.dim_ = f.positive("dim", 0);
  MMFUSE_CHECK(m.dim_ == (m.source_ ? m.source_->dim() : m.config_.features.dim()), bad_input,
               where + ": dim does not match the feature settings");
  const int rows = m.config_.patch_knn ? f.positive("bank_rows", 0) : 0;
  MMFUSE_CHECK(f.has("threshold"), bad_input, where + ": field \"threshold\" is missing");
  m.threshold_ = f.number("threshold", 0.0);
  m.training_images_ = static_cast<size_t>(std::max<int64_t>(0, f.integer("training_images", 0)));
  // The manifest digest catches a weights file from another fit or a torn copy.
  const fs::path weights = dir / kWeightsFile;
  MMFUSE_CHECK(j.contains("manifest") && j["manifest"].contains(kWeightsFile), bad_input,
               where + ": manifest entry for " + kWeightsFile + " is missing");
  {
    std::ifstream in(weights, std::ios::binary);
    MMFUSE_CHECK(in.good(), not_found, weights.string() + ": cannot open");
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    JsonFields mf(j["manifest"][kWeightsFile], where + ": manifest");
    MMFUSE_CHECK(mf.string("sha256", "") == sha256_hex(bytes.data(), bytes.size()), bad_input,
                 weights.string() + ": does not match the SHA-256 in " + where);
  }
  const auto store = WeightStore::open_folder(dir);
  if (m.config_.patch_knn) {
    const float* bank = store->f32("bank", {rows, m.dim_});
    const float* mean = store->f32("mean", {m.dim_});
    const float* inv = store->f32("inv_scale", {m.dim_});
    m.bank_.assign(bank, bank + static_cast<size_t>(rows) * m.dim_);
    m.mean_.assign(mean, mean + m.dim_);
    m.inv_scale_.assign(inv, inv + m.dim_);
  }
  if (m.config_.position_gaussian) {
    PositionGaussian& pg = m.position_;
    pg.grid = m.config_.features.position_grid;
    pg.dim = m.config_.features.aligned_dim();
    const int64_t cells = static_cast<int64_t>(pg.grid) * pg.grid, d = pg.dim;
    const float* mean = store->f32("position_mean", {d});
    const float* inv = store->f32("position_inv_scale", {d});
    const float* centre = store->f32("position_centre", {cells, d});
    const float* precision = store->f32("position_precision", {cells, d * (d + 1) / 2});
    pg.mean.assign(mean, mean + d);
    pg.inv_scale.assign(inv, inv + d);
    pg.centre.assign(centre, centre + cells * d);
    pg.precision.assign(precision, precision + cells * d * (d + 1) / 2);
    for (float v : pg.precision)
      MMFUSE_CHECK(std::isfinite(v), bad_input, weights.string() + ": non-finite position_precision");
  }
  const int photos = static_cast<int>(std::max<int64_t>(1, f.integer("training_images", 0)));
  if (m.has_photo_terms()) {
    MMFUSE_CHECK(j.contains("terms") && j["terms"].is_object(), bad_input, where + ": field \"terms\" is missing");
    JsonFields tf(j["terms"], where + ": terms");
    m.patch_centre_ = tf.number("patch_centre", 0.0);
    m.patch_spread_ = tf.number("patch_spread", 1.0);
    m.photo_centre_ = tf.number("photo_centre", 0.0);
    m.photo_spread_ = tf.number("photo_spread", 1.0);
    m.structure_centre_ = tf.number("structure_centre", 0.0);
    m.structure_spread_ = tf.number("structure_spread", 1.0);
    m.position_centre_ = tf.number("position_centre", 0.0);
    m.position_spread_ = tf.number("position_spread", 1.0);
    MMFUSE_CHECK(m.patch_spread_ > 0 && m.photo_spread_ > 0 && m.structure_spread_ > 0 && m.position_spread_ > 0,
                 bad_input,
                 where + ": terms spreads must be positive");
  }
  if (m.config_.structure_statistics)
    load_photo_bank(*store, "structure", photos, TextureFeatureConfig::structure_dim(), m.structure_);
  if (m.config_.photo_statistics)
    load_photo_bank(*store, "stats", photos, m.config_.features.statistics_dim(), m.stats_);
  for (float v : m.bank_) MMFUSE_CHECK(std::isfinite(v), bad_input, weights.string() + ": non-finite bank");
  m.bank_norms_.resize(rows);
  for (int r = 0; r < rows; ++r) {
    float s = 0.0f;
    for (int k = 0; k < m.dim_; ++k) s += m.bank_[static_cast<size_t>(r) * m.dim_ + k] * m.bank_[static_cast<size_t>(r) * m.dim_ + k];
    m.bank_norms_[r] = s;
  }
  return m;
}

}  // namespace mmfuse
