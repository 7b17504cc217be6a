// UTC formatting (see utc_time.h).
#include "core/utc_time.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace mmfuse {

UtcTime utc_time(int64_t ms) {
  int64_t secs = ms / 1000, rem = ms % 1000;
  if (rem < 0) {
    rem += 1000;
    secs -= 1;
  }
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return {tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,           tm.tm_hour,
          tm.tm_min,         tm.tm_sec,     static_cast<int>(rem)};
}

std::string iso8601_utc(int64_t ms) {
  const UtcTime u = utc_time(ms);
  char buf[96];  // room for any int fields, which silences -Wformat-truncation
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", u.year, u.month, u.day,
                u.hour, u.minute, u.second, u.millisecond);
  return buf;
}

std::string iso8601_utc_seconds(int64_t ms) {
  const UtcTime u = utc_time(ms);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", u.year, u.month, u.day, u.hour,
                u.minute, u.second);
  return buf;
}

std::string utc_day(int64_t ms) {
  const UtcTime u = utc_time(ms);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", u.year, u.month, u.day);
  return buf;
}

int64_t unix_time_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace mmfuse
