// Fuzzes the time-stamp reader (sensor/time_axis.h): any bytes either parse to
// a finite number of seconds or give nullopt; the sampling interval of any
// lines is finite and not negative. Never a crash, never an exception.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "sensor/time_axis.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto t = mmfuse::sensor::parse_time_seconds(text);
  if (t && !std::isfinite(*t)) std::abort();
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t nl = text.find('\n', start);
    lines.emplace_back(text.substr(start, nl == std::string_view::npos ? nl : nl - start));
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  const double dt = mmfuse::sensor::sampling_interval_seconds(lines, lines.size());
  if (!std::isfinite(dt) || dt < 0.0) std::abort();
  if (mmfuse::sensor::seconds_to_rows(1.0, dt) < 1) std::abort();
  return 0;
}
