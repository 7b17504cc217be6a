// Fuzzes the sensor CSV parser: any bytes either parse into a table whose
// values are all finite and whose shape is consistent, or raise mmfuse::Error.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "mmfuse/error.h"
#include "sensor/csv_source.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const bool reject : {false, true}) {
    mmfuse::sensor::CsvOptions options;
    options.reject_bad_rows = reject;
    try {
      const auto t = mmfuse::sensor::parse_csv(text, "fuzz.csv", options);
      if (t.values.data.size() != t.rows() * t.channels.size()) std::abort();
      if (t.labels.rows != t.rows() || t.lines.size() != t.rows()) std::abort();
      for (double v : t.values.data)
        if (!std::isfinite(v)) std::abort();
    } catch (const mmfuse::Error&) {
    }
  }
  return 0;
}
