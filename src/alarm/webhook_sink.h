// Webhook alarm sink on libcurl: POST of the alarm payload as application/json to a
// URL; delivered = HTTP 2xx within the timeout. Everything else (connection refused,
// timeout, 3xx/4xx/5xx) is a failed attempt retried by the outbox with back-off.
#pragma once

#include <string>

#include "alarm/sink.h"

namespace mmfuse::alarm {

struct WebhookOptions {
  std::string url;           // http:// or https://
  std::string bearer_token;  // non-empty: "Authorization: Bearer <token>"
  int timeout_ms = 5000;     // whole request
  int connect_timeout_ms = 2000;
  std::string sink_name = "webhook";
};

class WebhookSink : public Sink {
 public:
  // Throws bad_input when the URL is not http(s).
  explicit WebhookSink(const WebhookOptions& options);
  ~WebhookSink() override;
  WebhookSink(const WebhookSink&) = delete;
  WebhookSink& operator=(const WebhookSink&) = delete;

  const std::string& name() const override { return options_.sink_name; }
  DeliveryResult deliver(const store::OutboxEntry& entry) override;

 private:
  WebhookOptions options_;
  void* curl_ = nullptr;  // CURL*, reused so connections are kept alive
};

}  // namespace mmfuse::alarm
