#include "audio/normalize.h"

#include <algorithm>
#include <cmath>

#include "mmfuse/error.h"

namespace mmfuse {

NormalizeMode parse_normalize_mode(const std::string& name, const std::string& where) {
  if (name == "none") return NormalizeMode::none;
  if (name == "peak") return NormalizeMode::peak;
  if (name == "rms") return NormalizeMode::rms;
  throw_error(ErrorKind::bad_input,
              where + ": normalisation must be none, peak or rms, not \"" + name + "\"");
}

const char* to_string(NormalizeMode mode) {
  switch (mode) {
    case NormalizeMode::none: return "none";
    case NormalizeMode::peak: return "peak";
    case NormalizeMode::rms: return "rms";
  }
  return "none";
}

void normalize_audio(std::vector<float>& samples, NormalizeMode mode, float target) {
  if (mode == NormalizeMode::none || samples.empty()) return;
  double level = 0.0;
  if (mode == NormalizeMode::peak) {
    for (float v : samples) level = std::max(level, static_cast<double>(std::fabs(v)));
  } else {
    double sum = 0.0;
    for (float v : samples) sum += static_cast<double>(v) * v;
    level = std::sqrt(sum / static_cast<double>(samples.size()));
  }
  if (level <= 0.0) return;
  const float gain = static_cast<float>(target / level);
  for (float& v : samples) v *= gain;
}

}  // namespace mmfuse
