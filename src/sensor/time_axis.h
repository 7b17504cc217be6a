// Time stamps of sensor rows as seconds, and the sampling interval of a
// series: what turns time-based settings (the slow-channel lag, NAB's label
// windows) into row counts. Accepted forms: a plain number (seconds, e.g. Unix
// time) or an ISO 8601-style date-time "YYYY-MM-DD[ T]hh:mm[:ss[.frac]][Z]"
// (read as UTC; a numeric offset is not accepted).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mmfuse::sensor {

// Seconds since 1970-01-01 UTC (or the plain number); nullopt when the text is
// neither form.
std::optional<double> parse_time_seconds(std::string_view text);

// The median of the positive differences between consecutive parsed times
// among the first `max_rows` stamps; 0 when fewer than two parse (then
// settings given in seconds are read as rows).
double sampling_interval_seconds(const std::vector<std::string>& times, size_t max_rows);

// A duration in seconds as a row count for a series sampled every `interval`
// seconds (interval 0 = unknown: the duration is taken as rows); at least 1.
size_t seconds_to_rows(double seconds, double interval);

}  // namespace mmfuse::sensor
