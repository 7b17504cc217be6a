// A reimplementation of the algorithm of Pillow 9.4's ImagingResample
// (libImaging/Resample.c) for 8-bit images, written from its description:
//   * per output pixel, a window of input pixels around
//     center = (x + 0.5) * scale, with the filter support widened by the
//     downscale factor (antialiasing) and the filter argument shrunk by it;
//   * double coefficients normalised to sum 1, then rounded half away from zero
//     to 22-bit fixed point (PRECISION_BITS = 32 - 8 - 2);
//   * accumulation in 32-bit integers starting at 1 << 21, then >> 22 and
//     clipped to 0..255;
//   * the horizontal pass first (only over the input rows the vertical pass
//     needs), then the vertical pass; a pass whose size does not change is
//     skipped.
// Floating-point contraction (FMA) must stay off here: Pillow's coefficients
// are computed with separately rounded multiplies and adds, and one ulp can
// flip a rounded coefficient.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "vision/pil_resize.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "mmfuse/error.h"

namespace mmfuse {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr double kPi = 3.14159265358979323846;

double box_filter(double x) {
  return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0;
}

double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

double hamming_filter(double x) {
  if (x < 0.0) x = -x;
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x = x * kPi;
  return std::sin(x) / x * (0.54f + 0.46f * std::cos(x));
}

double bicubic_filter(double x) {
  // Keys' cubic convolution with a = -0.5.
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double sinc_filter(double x) {
  if (x == 0.0) return 1.0;
  x = x * kPi;
  return std::sin(x) / x;
}

double lanczos_filter(double x) {
  // Truncated sinc, 3 lobes.
  if (-3.0 <= x && x < 3.0) return sinc_filter(x) * sinc_filter(x / 3);
  return 0.0;
}

struct Filter {
  double (*fn)(double);
  double support;
};

// Fixed-point coefficients of one pass: for output index i, the input window
// starts at bounds[2i] and has bounds[2i+1] taps, weights kk[i*ksize ...].
struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;
  std::vector<int32_t> kk;
};

Coeffs precompute_coeffs(int in_size, float in0, float in1, int out_size, const Filter& filter) {
  double scale = static_cast<double>(in1 - in0) / out_size;
  double filterscale = scale;
  if (filterscale < 1.0) filterscale = 1.0;
  const double support = filter.support * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  const size_t ksize = static_cast<size_t>(c.ksize);
  std::vector<double> prekk(static_cast<size_t>(out_size) * ksize, 0.0);
  c.bounds.resize(static_cast<size_t>(out_size) * 2);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    double ww = 0.0;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    if (xmax > c.ksize) xmax = c.ksize;  // cannot happen; keeps the writes in bounds
    double* k = &prekk[static_cast<size_t>(xx) * ksize];
    for (int x = 0; x < xmax; ++x) {
      const double w = filter.fn((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; ++x) {
      if (ww != 0.0) k[x] /= ww;
    }
    c.bounds[2 * static_cast<size_t>(xx)] = xmin;
    c.bounds[2 * static_cast<size_t>(xx) + 1] = xmax < 0 ? 0 : xmax;
  }
  c.kk.resize(prekk.size());
  for (size_t i = 0; i < prekk.size(); ++i) {
    const double v = prekk[i] * (1 << kPrecisionBits);
    c.kk[i] = static_cast<int32_t>(prekk[i] < 0 ? -0.5 + v : 0.5 + v);
  }
  return c;
}

// Accumulators are unsigned so that the (never expected) overflow wraps as it
// does in Pillow's int arithmetic instead of being undefined.
inline uint8_t clip8(uint32_t acc) {
  const int32_t v = static_cast<int32_t>(acc) >> kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Horizontal pass over input rows [row0, row0 + rows) into `out` (rows x out_w).
void resample_horizontal(const uint8_t* in, int in_w, int row0, int rows, const Coeffs& c,
                         int out_w, uint8_t* out) {
  constexpr uint32_t kHalf = 1u << (kPrecisionBits - 1);
  for (int yy = 0; yy < rows; ++yy) {
    const uint8_t* src = in + static_cast<size_t>(yy + row0) * static_cast<size_t>(in_w) * 3;
    uint8_t* dst = out + static_cast<size_t>(yy) * static_cast<size_t>(out_w) * 3;
    for (int xx = 0; xx < out_w; ++xx) {
      const int xmin = c.bounds[2 * static_cast<size_t>(xx)];
      const int n = c.bounds[2 * static_cast<size_t>(xx) + 1];
      const int32_t* k = &c.kk[static_cast<size_t>(xx) * static_cast<size_t>(c.ksize)];
      uint32_t s0 = kHalf, s1 = kHalf, s2 = kHalf;
      const uint8_t* p = src + static_cast<size_t>(xmin) * 3;
      for (int x = 0; x < n; ++x) {
        const uint32_t kx = static_cast<uint32_t>(k[x]);
        s0 += p[3 * x] * kx;
        s1 += p[3 * x + 1] * kx;
        s2 += p[3 * x + 2] * kx;
      }
      dst[3 * xx] = clip8(s0);
      dst[3 * xx + 1] = clip8(s1);
      dst[3 * xx + 2] = clip8(s2);
    }
  }
}

// Vertical pass: `in` is w x in_rows, bounds are relative to its first row.
void resample_vertical(const uint8_t* in, int w, const Coeffs& c, int out_h, uint8_t* out) {
  constexpr uint32_t kHalf = 1u << (kPrecisionBits - 1);
  const size_t row = static_cast<size_t>(w) * 3;
  std::vector<uint32_t> acc(row);
  for (int yy = 0; yy < out_h; ++yy) {
    const int ymin = c.bounds[2 * static_cast<size_t>(yy)];
    const int n = c.bounds[2 * static_cast<size_t>(yy) + 1];
    const int32_t* k = &c.kk[static_cast<size_t>(yy) * static_cast<size_t>(c.ksize)];
    std::fill(acc.begin(), acc.end(), kHalf);
    for (int y = 0; y < n; ++y) {
      const uint8_t* src = in + static_cast<size_t>(ymin + y) * row;
      const uint32_t ky = static_cast<uint32_t>(k[y]);
      for (size_t i = 0; i < row; ++i) acc[i] += src[i] * ky;
    }
    uint8_t* dst = out + static_cast<size_t>(yy) * row;
    for (size_t i = 0; i < row; ++i) dst[i] = clip8(acc[i]);
  }
}

}  // namespace

Image pil_resize(const Image& in, int out_w, int out_h, int resample) {
  Filter filter{nullptr, 0.0};
  switch (resample) {
    case kPilLanczos: filter = {lanczos_filter, 3.0}; break;
    case kPilBilinear: filter = {bilinear_filter, 1.0}; break;
    case kPilBicubic: filter = {bicubic_filter, 2.0}; break;
    case kPilBox: filter = {box_filter, 0.5}; break;
    case kPilHamming: filter = {hamming_filter, 1.0}; break;
    default:
      throw_error(ErrorKind::unsupported,
                  "resample filter " + std::to_string(resample) +
                      " is not supported (supported PIL filters: 1 lanczos, 2 bilinear, "
                      "3 bicubic, 4 box, 5 hamming)");
  }
  MMFUSE_CHECK(in.width > 0 && in.height > 0 &&
                   in.rgb.size() == static_cast<size_t>(in.width) * in.height * 3,
               bad_input, "pil_resize: invalid input image");
  MMFUSE_CHECK(
      out_w > 0 && out_h > 0, bad_input,
      "pil_resize: invalid output size " + std::to_string(out_w) + "x" + std::to_string(out_h));

  const bool need_horizontal = out_w != in.width;
  const bool need_vertical = out_h != in.height;
  if (!need_horizontal && !need_vertical) return in;

  const Coeffs horiz =
      precompute_coeffs(in.width, 0.0f, static_cast<float>(in.width), out_w, filter);
  Coeffs vert = precompute_coeffs(in.height, 0.0f, static_cast<float>(in.height), out_h, filter);

  // Rows of the input that the vertical pass reads.
  const int ybox_first = vert.bounds[0];
  const int ybox_last = vert.bounds[2 * static_cast<size_t>(out_h) - 2] +
                        vert.bounds[2 * static_cast<size_t>(out_h) - 1];

  Image cur;
  const Image* src = &in;
  if (need_horizontal) {
    for (int i = 0; i < out_h; ++i) vert.bounds[2 * static_cast<size_t>(i)] -= ybox_first;
    cur.width = out_w;
    cur.height = ybox_last - ybox_first;
    cur.rgb.resize(static_cast<size_t>(cur.width) * cur.height * 3);
    resample_horizontal(in.rgb.data(), in.width, ybox_first, cur.height, horiz, out_w,
                        cur.rgb.data());
    src = &cur;
  }
  if (need_vertical) {
    Image out;
    out.width = src->width;
    out.height = out_h;
    out.rgb.resize(static_cast<size_t>(out.width) * out_h * 3);
    resample_vertical(src->rgb.data(), src->width, vert, out_h, out.rgb.data());
    return out;
  }
  return cur;
}

}  // namespace mmfuse
