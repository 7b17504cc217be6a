// Small string helpers shared across folders.
#pragma once

#include <string>

namespace mmfuse {

// `s` with A-Z mapped to a-z; every other byte (UTF-8 included) unchanged.
std::string ascii_lower(std::string s);
// `s` with a-z mapped to A-Z; every other byte unchanged.
std::string ascii_upper(std::string s);
// The shortest decimal that reads back as this float, held as a double, so JSON
// shows 0.61133468 rather than the double expansion 0.6113346815109253.
double shortest_float(float value);

}  // namespace mmfuse
