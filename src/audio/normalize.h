// Loudness normalisation of a mono clip, so that the features describe the
// sound's spectrum and not how close the microphone was.
#pragma once

#include <string>
#include <vector>

namespace mmfuse {

enum class NormalizeMode {
  none,
  peak,  // scale so that max |x| = target (default target 1.0, i.e. 0 dBFS)
  rms,   // scale so that sqrt(mean x^2) = target (e.g. 0.1, i.e. -20 dBFS)
};

NormalizeMode parse_normalize_mode(const std::string& name, const std::string& where);
const char* to_string(NormalizeMode mode);

// Scales `samples` in place. An all-zero clip is left as it is.
void normalize_audio(std::vector<float>& samples, NormalizeMode mode, float target);

}  // namespace mmfuse
