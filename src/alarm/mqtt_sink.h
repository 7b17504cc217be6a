// MQTT alarm sink on libmosquitto: QoS 1 publish of the alarm payload to
// <prefix>/alarms/<area>/<device>/<type>, delivered = PUBACK received (on_publish).
// The client keeps its own network thread, reconnects with back-off after the broker
// goes away, and never retries on its own: an unconfirmed publish drops the
// connection's queue, and the outbox row is retried by the dispatcher (so the outbox
// is the only queue; see docs/alarms.md).
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "alarm/sink.h"

struct mosquitto;

namespace mmfuse::alarm {

struct MqttOptions {
  std::string host = "127.0.0.1";
  int port = 1883;
  std::string client_id = "mmfuse-alarms";  // broker-side identity (one per process)
  std::string topic_prefix = "mmfuse";
  std::string username;  // empty = anonymous
  std::string password;
  int keepalive_s = 30;
  int publish_timeout_ms = 5000;  // wait this long for PUBACK before calling it failed
  int reconnect_min_s = 1;        // libmosquitto reconnect back-off, doubling up to max
  int reconnect_max_s = 30;
  bool retain = false;
  std::string sink_name = "mqtt";
};

class MqttSink : public Sink {
 public:
  // Starts the network thread and an asynchronous connect (returns at once; a broker
  // that is down is not an error, rows just wait). Throws bad_input for bad options.
  explicit MqttSink(const MqttOptions& options);
  ~MqttSink() override;
  MqttSink(const MqttSink&) = delete;
  MqttSink& operator=(const MqttSink&) = delete;

  const std::string& name() const override { return options_.sink_name; }
  DeliveryResult deliver(const store::OutboxEntry& entry) override;
  bool connected() const;
  // Waits up to timeout_ms for the connection; true when connected.
  bool wait_connected(int timeout_ms) const;

 private:
  void create_client();
  void destroy_client();
  static void on_connect(struct mosquitto*, void* self, int rc);
  static void on_disconnect(struct mosquitto*, void* self, int rc);
  static void on_publish(struct mosquitto*, void* self, int mid);

  MqttOptions options_;
  struct mosquitto* mosq_ = nullptr;
  mutable std::mutex mutex_;
  mutable std::condition_variable cv_;
  bool connected_ = false;
  std::set<int> acked_;      // mids whose PUBACK arrived
  uint64_t generation_ = 0;  // bumped on every disconnect: a pending publish is lost
};

}  // namespace mmfuse::alarm
