// Progress of a long indexing run on stderr: a redrawn bar with rate and ETA on a
// terminal, a plain log line every few seconds otherwise (CI logs, pipes).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace mmfuse {

class Progress {
 public:
  // total = items expected; `enabled` false prints nothing.
  Progress(std::string label, size_t total, bool enabled);
  // done = items processed so far (added + skipped + failed).
  void update(size_t done, size_t added, size_t failed);
  void finish(size_t done, size_t added, size_t failed);

 private:
  void draw(size_t done, size_t added, size_t failed, bool last);
  std::string label_;
  size_t total_;
  bool enabled_, tty_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace mmfuse
