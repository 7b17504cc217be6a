// Webhook sink on libcurl: POST application/json, delivered on HTTP 2xx (see webhook_sink.h).
#include "alarm/webhook_sink.h"

#include <curl/curl.h>

#include <mutex>

#include "mmfuse/error.h"

namespace mmfuse::alarm {

namespace {

void init_library() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Keeps the first bytes of the response body for the error message.
size_t keep_head(char* data, size_t size, size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  const size_t bytes = size * n;
  if (body->size() < 200) body->append(data, std::min(bytes, 200 - body->size()));
  return bytes;
}

}  // namespace

WebhookSink::WebhookSink(const WebhookOptions& options) : options_(options) {
  const std::string& u = options.url;
  MMFUSE_CHECK(u.rfind("http://", 0) == 0 || u.rfind("https://", 0) == 0, bad_input,
               "webhook: url '" + u + "' is not http:// or https://");
  MMFUSE_CHECK(options.timeout_ms > 0 && options.connect_timeout_ms > 0, bad_input,
               "webhook: timeouts must be > 0");
  init_library();
  curl_ = curl_easy_init();
  if (!curl_) throw_error(ErrorKind::internal, "webhook: curl_easy_init failed");
}

WebhookSink::~WebhookSink() {
  curl_easy_cleanup(static_cast<CURL*>(curl_));
}

DeliveryResult WebhookSink::deliver(const store::OutboxEntry& entry) {
  CURL* c = static_cast<CURL*>(curl_);
  curl_easy_reset(c);  // keeps the connection cache, drops the previous request's options
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Content-Type: application/json");
  // Lets the receiver drop a redelivery it has already processed.
  headers =
      curl_slist_append(headers, ("X-Mmfuse-Alarm-Id: " + std::to_string(entry.alarm_id)).c_str());
  if (!options_.bearer_token.empty())
    headers =
        curl_slist_append(headers, ("Authorization: Bearer " + options_.bearer_token).c_str());
  std::string body;
  curl_easy_setopt(c, CURLOPT_URL, options_.url.c_str());
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, entry.payload.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(entry.payload.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout_ms));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout_ms));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // safe in a multi-threaded process
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &keep_head);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  const CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) return {false, std::string("webhook: ") + curl_easy_strerror(rc)};
  if (status >= 200 && status < 300) return {true, ""};
  return {false, "webhook: HTTP " + std::to_string(status) + (body.empty() ? "" : ": " + body)};
}

}  // namespace mmfuse::alarm
