// Small string helpers shared across folders.
#pragma once

#include <string>

namespace mmfuse {

// `s` with A-Z mapped to a-z; every other byte (UTF-8 included) unchanged.
std::string ascii_lower(std::string s);
// `s` with a-z mapped to A-Z; every other byte unchanged.
std::string ascii_upper(std::string s);

}  // namespace mmfuse
