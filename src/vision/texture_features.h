// Weight-free patch descriptors for surface inspection: a multi-scale Gaussian
// jet (smoothed intensity and its first and second derivatives at several
// scales) of the grey image divided by its mean, sampled on a regular grid.
// Dividing by the mean makes the descriptor invariant to exposure (a global
// gain); the pixel scale is kept (photos are not resized), because tiles of
// different sizes are cropped from the same camera and texture scale matters.
#pragma once

#include <cstdint>
#include <vector>

#include "vision/image.h"

namespace mmfuse {

struct TextureFeatureConfig {
  std::vector<float> sigmas = {1.0f, 2.0f, 4.0f, 8.0f};  // Gaussian scales in pixels
  int stride = 8;                                       // grid step in pixels
  // Side of the photo-aligned grid (PatchGrid::aligned): the full-resolution
  // jet responses averaged over position_grid x position_grid cells spanning
  // the whole photo, whatever its size -- the tile face fills the frame, so
  // cell (i, j) sees the same part of every tile. 0: not computed.
  int position_grid = 40;
  int dim() const { return static_cast<int>(sigmas.size()) * 6; }
  // Photo-aligned descriptor: the 6 jet responses per scale, then the
  // magnitudes of the 5 derivatives per scale.
  int aligned_dim() const { return static_cast<int>(sigmas.size()) * 11; }
  // Photo-level statistics: per scale, 7 percentiles of each of the 6
  // full-resolution filter responses + 3 of the local gradient energy.
  int statistics_dim() const { return static_cast<int>(sigmas.size()) * (6 * 7 + 3); }
  // Photo-level structure statistics: at sigma 1, 2, 4 px, 7 percentiles of
  // the structure tensor's coherence (0: isotropic, 1: one orientation)
  // integrated over 2 sigma -- how streaky the texture is, which cracks and
  // uneven bands change.
  static constexpr int kStructureScales = 3;
  static constexpr int kStructurePercentiles = 7;
  static int structure_dim() { return kStructureScales * kStructurePercentiles; }
};

// Descriptors on a rows x cols grid; cell (r, c) is centred on pixel
// (c * stride + stride / 2, r * stride + stride / 2).
struct PatchGrid {
  int rows = 0, cols = 0, dim = 0;
  std::vector<float> values;  // rows * cols * dim
  const float* at(int r, int c) const {
    return values.data() + (static_cast<size_t>(r) * cols + c) * dim;
  }
  size_t count() const { return static_cast<size_t>(rows) * cols; }
  // Photo-level texture statistics (TextureFeatureConfig::statistics_dim):
  // what the whole photo looks like, for defects spread too thin or too wide
  // for one patch (unevenness, faint cracks).
  std::vector<float> statistics;
  // Structure-tensor coherence percentiles (TextureFeatureConfig::structure_dim).
  std::vector<float> structure;
  // Photo-aligned descriptors: aligned_grid^2 cells (row-major) of aligned_dim
  // numbers: the means of the jet responses over that cell's share of the
  // photo, then the means of the derivatives' magnitudes.
  int aligned_grid = 0, aligned_dim = 0;
  std::vector<float> aligned;
};

// Grey levels (ITU-R 601 luma) as float, width * height.
std::vector<float> grey_levels(const Image& image);

// Throws Error(bad_input) when the image is smaller than one grid cell.
// Thread-safe.
PatchGrid texture_features(const Image& image, const TextureFeatureConfig& config);

}  // namespace mmfuse
