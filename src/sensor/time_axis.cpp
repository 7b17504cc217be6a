#include "sensor/time_axis.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace mmfuse::sensor {

namespace {

// Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar.
long long days_from_civil(long long y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const long long era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<long long>(doe) - 719468;
}

// Reads exactly `n` digits at s[pos]; advances pos.
bool digits(std::string_view s, size_t& pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (size_t i = 0; i < n; ++i) {
    const char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  pos += n;
  return true;
}

std::optional<double> parse_plain_number(std::string_view s) {
  const std::string text(s);
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0' || !std::isfinite(v)) return std::nullopt;
  return v;
}

}  // namespace

std::optional<double> parse_time_seconds(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '"')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '"' || s.back() == 'Z')) s.remove_suffix(1);
  if (s.empty()) return std::nullopt;
  if (s.size() < 10 || s[4] != '-') return parse_plain_number(s);
  size_t p = 0;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!digits(s, p, 4, y) || s[p++] != '-' || !digits(s, p, 2, mo) || p >= s.size() ||
      s[p++] != '-' || !digits(s, p, 2, d))
    return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return std::nullopt;
  double frac = 0.0;
  if (p < s.size()) {
    if (s[p] != ' ' && s[p] != 'T') return std::nullopt;
    ++p;
    if (!digits(s, p, 2, h) || p >= s.size() || s[p++] != ':' || !digits(s, p, 2, mi))
      return std::nullopt;
    if (p < s.size()) {
      if (s[p++] != ':' || !digits(s, p, 2, sec)) return std::nullopt;
      if (p < s.size()) {
        if (s[p] != '.' && s[p] != ',') return std::nullopt;
        double scale = 0.1;
        for (++p; p < s.size(); ++p, scale /= 10) {
          if (s[p] < '0' || s[p] > '9') return std::nullopt;
          frac += (s[p] - '0') * scale;
        }
      }
    }
    if (h > 23 || mi > 59 || sec > 60) return std::nullopt;
  }
  const long long days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  return static_cast<double>(days * 86400LL + h * 3600LL + mi * 60LL + sec) + frac;
}

double sampling_interval_seconds(const std::vector<std::string>& times, size_t max_rows) {
  const size_t n = std::min(times.size(), max_rows);
  std::vector<double> gaps;
  std::optional<double> prev;
  for (size_t i = 0; i < n; ++i) {
    const std::optional<double> t = parse_time_seconds(times[i]);
    if (!t) return 0.0;  // not a time axis we can read: fall back to rows
    if (prev && *t > *prev && std::isfinite(*t - *prev)) gaps.push_back(*t - *prev);
    prev = t;
  }
  if (gaps.empty()) return 0.0;
  std::nth_element(gaps.begin(), gaps.begin() + gaps.size() / 2, gaps.end());
  return gaps[gaps.size() / 2];
}

size_t seconds_to_rows(double seconds, double interval) {
  const double rows = interval > 0.0 ? seconds / interval : seconds;
  // At least one row; NaN and absurd ratios (a time column in the wrong unit) are clamped
  // rather than cast out of range.
  if (!(rows >= 1.0)) return 1;
  return static_cast<size_t>(std::round(std::min(rows, 1e12)));
}

}  // namespace mmfuse::sensor
