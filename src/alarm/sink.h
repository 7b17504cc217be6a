// The interface the outbox dispatcher delivers alarm payloads through. A sink says
// "delivered" only once the receiver confirmed (MQTT PUBACK, HTTP 2xx); anything else
// is a failure and the outbox row is retried later.
#pragma once

#include <string>

#include "store/store.h"

namespace mmfuse::alarm {

struct DeliveryResult {
  bool delivered = false;
  std::string error;  // why not (shown in the outbox row's last_error)
};

class Sink {
 public:
  virtual ~Sink() = default;
  // The name outbox rows use for this sink ("mqtt", "webhook", ...).
  virtual const std::string& name() const = 0;
  // Delivers one outbox row, blocking until confirmed, failed or timed out.
  // Called from one thread at a time (the dispatcher's).
  virtual DeliveryResult deliver(const store::OutboxEntry& entry) = 0;
};

}  // namespace mmfuse::alarm
