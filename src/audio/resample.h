// Sample-rate conversion with libsoxr at its "high quality" recipe (SOXR_HQ:
// 20-bit precision, linear phase, pass band flat to 91.3 % of the lower
// Nyquist frequency, full attenuation from it), one thread.
#pragma once

#include <string>
#include <vector>

namespace mmfuse {

// Returns `samples` (mono) converted from `from_rate` to `to_rate` Hz; the
// output has round(n * to_rate / from_rate) samples. Same rate: a copy.
// `name` appears in errors.
std::vector<float> resample_audio(const std::vector<float>& samples, int from_rate, int to_rate,
                                  const std::string& name);

}  // namespace mmfuse
