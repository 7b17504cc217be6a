// Time source for the store and the alarm outbox: Unix epoch milliseconds behind an
// interface, so retention, de-duplication and back-off are testable with a FakeClock.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "core/utc_time.h"  // iso8601_utc, utc_day for stored times

namespace mmfuse::store {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t now_ms() const = 0;  // Unix epoch milliseconds; thread-safe
};

// The wall clock (std::chrono::system_clock).
class SystemClock : public Clock {
 public:
  int64_t now_ms() const override;
  static const SystemClock& instance();  // a process-wide instance
};

// A clock that moves only when told to. Thread-safe.
class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t start_ms = 1'700'000'000'000) : now_(start_ms) {}
  int64_t now_ms() const override { return now_.load(); }
  void set_ms(int64_t t) { now_.store(t); }
  void advance_ms(int64_t dt) { now_.fetch_add(dt); }

 private:
  std::atomic<int64_t> now_;
};

inline constexpr int64_t kMsPerDay = 24LL * 3600 * 1000;

}  // namespace mmfuse::store
