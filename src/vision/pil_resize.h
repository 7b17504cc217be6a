// PIL 9.4 Image.resize() on 8-bit RGB, bit-exact: Pillow's ImagingResample
// (separable convolution, antialiased support scaled by the downscale factor,
// coefficients normalised and quantised to 22-bit fixed point, horizontal pass
// first, each pass rounded and clipped to uint8).
#pragma once

#include "vision/image.h"

namespace mmfuse {

// PIL resample codes.
enum PilResample : int {
  kPilNearest = 0,
  kPilLanczos = 1,
  kPilBilinear = 2,
  kPilBicubic = 3,
  kPilBox = 4,
  kPilHamming = 5,
};

// `resample` is a PIL code: 2 bilinear, 3 bicubic (also 1 lanczos, 4 box,
// 5 hamming). Nearest (0) and unknown codes throw Error(unsupported). Resizing
// to the same size returns a copy, as PIL does.
Image pil_resize(const Image& in, int out_w, int out_h, int resample);

}  // namespace mmfuse
