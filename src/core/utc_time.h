// UTC calendar fields and ISO 8601 text for Unix epoch millisecond times: the
// one formatter behind every timestamp mmfuse writes (store rows, alarms, the
// index catalogue, sensor polls, round ids). Thread-safe (gmtime_r).
#pragma once

#include <cstdint>
#include <string>

namespace mmfuse {

struct UtcTime {
  int year = 1970, month = 1, day = 1;  // month 1..12, day 1..31
  int hour = 0, minute = 0, second = 0, millisecond = 0;
};

// Fields of `ms` in UTC; floor division, so times before 1970 come out sensibly.
UtcTime utc_time(int64_t ms);
// "2026-11-29T07:50:00.123Z".
std::string iso8601_utc(int64_t ms);
// "2026-11-29T07:50:00Z" (milliseconds dropped).
std::string iso8601_utc_seconds(int64_t ms);
// "2026-11-29" (the UTC day).
std::string utc_day(int64_t ms);
// The wall clock (std::chrono::system_clock) in Unix epoch milliseconds.
int64_t unix_time_ms();

}  // namespace mmfuse
