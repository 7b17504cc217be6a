// ASCII case mapping (see strings.h); independent of the C locale.
#include "core/strings.h"

#include <charconv>
#include <cstdlib>

namespace mmfuse {

std::string ascii_lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

std::string ascii_upper(std::string s) {
  for (char& c : s)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return s;
}

double shortest_float(float value) {
  char buffer[32];
  auto result = std::to_chars(buffer, buffer + sizeof buffer - 1, value);
  *result.ptr = '\0';
  return std::strtod(buffer, nullptr);
}

}  // namespace mmfuse
