// Progress bar / log lines for index add and sync.
#include "index/progress.h"

#include <unistd.h>

#include <cstdio>

namespace mmfuse {

namespace {
std::string format_duration(double s) {
  char buf[32];
  const long t = static_cast<long>(s + 0.5);
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  return buf;
}
}  // namespace

Progress::Progress(std::string label, size_t total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled), tty_(::isatty(2) == 1) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

void Progress::update(size_t done, size_t added, size_t failed) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  // A terminal is redrawn 5 times a second; a log gets a line every 5 s.
  const auto every = tty_ ? std::chrono::milliseconds(200) : std::chrono::milliseconds(5000);
  if (now - last_draw_ < every) return;
  last_draw_ = now;
  draw(done, added, failed, false);
}

void Progress::finish(size_t done, size_t added, size_t failed) {
  if (enabled_) draw(done, added, failed, true);
}

void Progress::draw(size_t done, size_t added, size_t failed, bool last) {
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = secs > 0 ? static_cast<double>(done) / secs : 0.0;
  const double eta = rate > 0 && total_ > done ? static_cast<double>(total_ - done) / rate : 0.0;
  if (tty_) {
    constexpr int kWidth = 30;
    const int fill = total_ ? static_cast<int>(kWidth * done / total_) : kWidth;
    std::string bar(static_cast<size_t>(fill), '=');
    bar.resize(kWidth, ' ');
    std::fprintf(stderr, "\r%s [%s] %zu/%zu  %.1f/s  ETA %s  (added %zu, failed %zu)%s",
                 label_.c_str(), bar.c_str(), done, total_, rate, format_duration(eta).c_str(),
                 added, failed, last ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s: %zu/%zu done, %.1f/s, ETA %s, added %zu, failed %zu\n",
                 label_.c_str(), done, total_, rate, format_duration(eta).c_str(), added, failed);
  }
  std::fflush(stderr);
}

}  // namespace mmfuse
