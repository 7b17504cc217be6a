// Random draws for the demo's synthetic plant: uniform on [lo, hi) and cheap
// unit-variance noise (Irwin-Hall sum of four uniforms), both from one
// std::mt19937_64 so a seed reproduces a plant exactly.
#pragma once

#include <random>

namespace mmfuse::inspect {

inline double uni(std::mt19937_64& r, double lo, double hi) {
  return lo + (hi - lo) * (static_cast<double>(r() >> 11) * (1.0 / 9007199254740992.0));
}

inline double gauss(std::mt19937_64& r) {
  double s = 0.0;
  for (int i = 0; i < 4; ++i) s += static_cast<double>(r() >> 11) * (1.0 / 9007199254740992.0);
  return (s - 2.0) * 1.7320508075688772;
}

}  // namespace mmfuse::inspect
