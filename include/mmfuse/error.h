// mmfuse::Error: the single exception type of the library. Its kind decides how
// the CLI (exit code) and the HTTP server (status code) report it.
#pragma once

#include <stdexcept>
#include <string>

#include "mmfuse/export.h"

namespace mmfuse {

enum class ErrorKind {
  bad_input,    // the caller gave something malformed (file, field, value): exit 2 / HTTP 400
  not_found,    // a named file, tensor or item does not exist: exit 2 / HTTP 404
  unsupported,  // well-formed but not handled (dtype, model_type): exit 2 / HTTP 422
  internal,     // a bug or an environment failure: exit 1 / HTTP 500
};

class MMFUSE_API Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

MMFUSE_API const char* to_string(ErrorKind kind) noexcept;

[[noreturn]] MMFUSE_API void throw_error(ErrorKind kind, const std::string& message);

}  // namespace mmfuse

// Checks an invariant that holds unless the input is bad; the message names the
// file, tensor or field at fault.
#define MMFUSE_CHECK(cond, kind, msg)                                   \
  do {                                                                  \
    if (!(cond)) ::mmfuse::throw_error(::mmfuse::ErrorKind::kind, msg); \
  } while (0)

// Checks an internal invariant: failure is a bug in mmfuse, not in the input.
#define MMFUSE_ASSERT(cond)                                                                        \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      ::mmfuse::throw_error(::mmfuse::ErrorKind::internal,                                         \
                            std::string("internal check failed: " #cond " at ") + __FILE__ + ":" + \
                                std::to_string(__LINE__));                                         \
  } while (0)
