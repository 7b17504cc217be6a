// MQTT sink on libmosquitto: QoS 1 publish, delivered on PUBACK (see mqtt_sink.h).
#include "alarm/mqtt_sink.h"

#include <mosquitto.h>

#include <chrono>
#include <mutex>

#include "alarm/alarm_payload.h"
#include "mmfuse/error.h"

namespace mmfuse::alarm {

namespace {

void init_library() {
  static std::once_flag once;
  std::call_once(once, [] { mosquitto_lib_init(); });
}

}  // namespace

MqttSink::MqttSink(const MqttOptions& options) : options_(options) {
  MMFUSE_CHECK(!options.host.empty(), bad_input, "mqtt: the broker host is empty");
  MMFUSE_CHECK(options.port > 0 && options.port < 65536, bad_input,
               "mqtt: port " + std::to_string(options.port) + " is out of range");
  MMFUSE_CHECK(options.keepalive_s >= 5, bad_input, "mqtt: keepalive must be >= 5 s");
  MMFUSE_CHECK(!options.client_id.empty() && options.client_id.size() <= 23 * 4, bad_input,
               "mqtt: the client id is empty or too long");
  MMFUSE_CHECK(options.publish_timeout_ms > 0, bad_input, "mqtt: publish_timeout_ms must be > 0");
  MMFUSE_CHECK(options.reconnect_min_s >= 1 && options.reconnect_max_s >= options.reconnect_min_s,
               bad_input, "mqtt: reconnect delays must satisfy 1 <= min <= max");
  init_library();
  create_client();
}

MqttSink::~MqttSink() {
  destroy_client();
}

void MqttSink::create_client() {
  // Clean session: the broker keeps no state for us; the outbox is the only queue.
  mosq_ = mosquitto_new(options_.client_id.c_str(), true, this);
  if (!mosq_) throw_error(ErrorKind::internal, "mqtt: cannot create a client (out of memory)");
  mosquitto_connect_callback_set(mosq_, &MqttSink::on_connect);
  mosquitto_disconnect_callback_set(mosq_, &MqttSink::on_disconnect);
  mosquitto_publish_callback_set(mosq_, &MqttSink::on_publish);
  mosquitto_reconnect_delay_set(mosq_, static_cast<unsigned>(options_.reconnect_min_s),
                                static_cast<unsigned>(options_.reconnect_max_s), true);
  if (!options_.username.empty())
    mosquitto_username_pw_set(mosq_, options_.username.c_str(),
                              options_.password.empty() ? nullptr : options_.password.c_str());
  // A broker that is down now is fine: the network thread keeps reconnecting.
  mosquitto_connect_async(mosq_, options_.host.c_str(), options_.port, options_.keepalive_s);
  if (mosquitto_loop_start(mosq_) != MOSQ_ERR_SUCCESS) {
    mosquitto_destroy(mosq_);
    mosq_ = nullptr;
    throw_error(ErrorKind::internal, "mqtt: cannot start the network thread");
  }
}

void MqttSink::destroy_client() {
  if (!mosq_) return;
  mosquitto_disconnect(mosq_);        // ends the network loop (also while it waits to reconnect)
  mosquitto_loop_stop(mosq_, false);  // joins the thread
  mosquitto_destroy(mosq_);
  mosq_ = nullptr;
  std::lock_guard<std::mutex> lock(mutex_);
  connected_ = false;
  acked_.clear();
  ++generation_;
}

void MqttSink::on_connect(struct mosquitto*, void* self, int rc) {
  auto* s = static_cast<MqttSink*>(self);
  std::lock_guard<std::mutex> lock(s->mutex_);
  s->connected_ = rc == 0;
  s->cv_.notify_all();
}

void MqttSink::on_disconnect(struct mosquitto*, void* self, int) {
  auto* s = static_cast<MqttSink*>(self);
  std::lock_guard<std::mutex> lock(s->mutex_);
  s->connected_ = false;
  ++s->generation_;
  s->cv_.notify_all();
}

void MqttSink::on_publish(struct mosquitto*, void* self, int mid) {
  auto* s = static_cast<MqttSink*>(self);
  std::lock_guard<std::mutex> lock(s->mutex_);
  s->acked_.insert(mid);
  s->cv_.notify_all();
}

bool MqttSink::connected() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return connected_;
}

bool MqttSink::wait_connected(int timeout_ms) const {
  std::unique_lock<std::mutex> lock(mutex_);
  return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return connected_; });
}

DeliveryResult MqttSink::deliver(const store::OutboxEntry& entry) {
  auto payload = nlohmann::json::parse(entry.payload, nullptr, false);
  if (payload.is_discarded() || !payload.is_object())
    return {false, "outbox row " + std::to_string(entry.id) + ": the payload is not a JSON object"};
  const std::string topic = alarm_topic(options_.topic_prefix, payload.value("area", ""),
                                        payload.value("device", ""), payload.value("type", ""));
  uint64_t generation = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!connected_)
      return {false,
              "mqtt: not connected to " + options_.host + ":" + std::to_string(options_.port)};
    generation = generation_;
    acked_.clear();
  }
  int mid = 0;
  const int rc =
      mosquitto_publish(mosq_, &mid, topic.c_str(), static_cast<int>(entry.payload.size()),
                        entry.payload.data(), 1, options_.retain);
  if (rc != MOSQ_ERR_SUCCESS)
    return {false, std::string("mqtt: publish: ") + mosquitto_strerror(rc)};
  bool acked = false;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait_for(lock, std::chrono::milliseconds(options_.publish_timeout_ms),
                 [&] { return acked_.count(mid) > 0 || generation_ != generation; });
    acked = acked_.count(mid) > 0;
  }
  if (acked) return {true, ""};
  // No PUBACK: drop the client (and the copy libmosquitto would resend by itself after
  // a reconnect), so that the outbox's retry is the only one.
  destroy_client();
  create_client();
  return {false, "mqtt: no PUBACK for message " + std::to_string(mid) + " on " + topic};
}

}  // namespace mmfuse::alarm
