// Wall clock and UTC formatting for stored times (see clock.h).
#include "store/clock.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace mmfuse::store {

int64_t SystemClock::now_ms() const {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

const SystemClock& SystemClock::instance() {
  static const SystemClock clock;
  return clock;
}

namespace {

std::tm utc_tm(int64_t ms, int* millis) {
  // Floor division so times before 1970 still format sensibly.
  int64_t secs = ms / 1000;
  int64_t rem = ms % 1000;
  if (rem < 0) {
    rem += 1000;
    secs -= 1;
  }
  *millis = static_cast<int>(rem);
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return tm;
}

}  // namespace

std::string iso8601_utc(int64_t ms) {
  int millis = 0;
  const std::tm tm = utc_tm(ms, &millis);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buf;
}

std::string utc_day(int64_t ms) {
  int millis = 0;
  const std::tm tm = utc_tm(ms, &millis);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
  return buf;
}

}  // namespace mmfuse::store
