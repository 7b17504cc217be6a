// The wall clock for stored times (see clock.h).
#include "store/clock.h"

namespace mmfuse::store {

int64_t SystemClock::now_ms() const {
  return unix_time_ms();
}

const SystemClock& SystemClock::instance() {
  static const SystemClock clock;
  return clock;
}

}  // namespace mmfuse::store
