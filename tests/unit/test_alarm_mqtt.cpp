// MQTT delivery through a real mosquitto broker started by the test: a libmosquitto
// subscriber checks every alarm arrives once, in order, on the documented topic; the
// broker is killed mid-run (alarms wait in the outbox, backlog grows) and restarted
// (all arrive, once); the background dispatcher flushes on stop().
#include <mosquitto.h>

#include <algorithm>
#include <mutex>

#include "alarm/alarm_payload.h"
#include "alarm/mqtt_sink.h"
#include "alarm/outbox_dispatcher.h"
#include "test_store_util.h"

using namespace mmfuse;
using mmfuse::test::Broker;
using mmfuse::test::holds_for;
using mmfuse::test::make_record;
using mmfuse::test::StoreTempDir;
using mmfuse::test::wait_until;

namespace {

// How long a test keeps listening after every expected message has arrived, to catch a late
// duplicate (a redelivery after a lost PUBACK arrives within tens of ms on loopback). This is
// the only fixed wait here: it proves that nothing *more* arrives.
constexpr int kLateDuplicateWindowMs = 300;

// Subscribes to <prefix>/alarms/# with QoS 1 and (re)subscribes on every connect.
class Subscriber {
 public:
  explicit Subscriber(int port) {
    mosquitto_lib_init();
    mosq_ = mosquitto_new("mmfuse-test-subscriber", true, this);
    mosquitto_connect_callback_set(mosq_, [](mosquitto* m, void* self, int rc) {
      if (rc == 0) mosquitto_subscribe(m, nullptr, "mmfuse/alarms/#", 1);
      (void)self;
    });
    mosquitto_subscribe_callback_set(mosq_, [](mosquitto*, void* self, int, int, const int*) {
      auto* s = static_cast<Subscriber*>(self);
      std::lock_guard<std::mutex> lock(s->mutex_);
      ++s->subscriptions_;
    });
    mosquitto_message_callback_set(mosq_, [](mosquitto*, void* self, const mosquitto_message* msg) {
      auto* s = static_cast<Subscriber*>(self);
      const std::string body(static_cast<const char*>(msg->payload),
                             static_cast<size_t>(msg->payloadlen));
      auto j = nlohmann::json::parse(body, nullptr, false);
      std::lock_guard<std::mutex> lock(s->mutex_);
      s->ids_.push_back(j.is_discarded() ? -1 : j.value("id", int64_t{-1}));
      s->topics_.push_back(msg->topic);
    });
    mosquitto_reconnect_delay_set(mosq_, 1, 1, false);
    mosquitto_connect_async(mosq_, "127.0.0.1", port, 10);
    mosquitto_loop_start(mosq_);
  }
  ~Subscriber() {
    mosquitto_disconnect(mosq_);
    mosquitto_loop_stop(mosq_, false);
    mosquitto_destroy(mosq_);
  }
  int subscriptions() {
    std::lock_guard<std::mutex> lock(mutex_);
    return subscriptions_;
  }
  std::vector<int64_t> ids() {
    std::lock_guard<std::mutex> lock(mutex_);
    return ids_;
  }
  std::vector<std::string> topics() {
    std::lock_guard<std::mutex> lock(mutex_);
    return topics_;
  }

 private:
  mosquitto* mosq_ = nullptr;
  std::mutex mutex_;
  int subscriptions_ = 0;
  std::vector<int64_t> ids_;
  std::vector<std::string> topics_;
};

std::vector<int64_t> raise_alarms(store::Store& s, int first, int n) {
  std::vector<int64_t> ids;
  for (int i = first; i < first + n; ++i)
    ids.push_back(s.record_inspection(make_record("dev-" + std::to_string(i), true)).alarm_id);
  return ids;
}

}  // namespace

TEST(AlarmMqtt, EveryAlarmArrivesOnceInOrderAcrossABrokerRestart) {
  if (!Broker::available()) GTEST_SKIP() << Broker::kBinary << " is not installed";
  StoreTempDir dir;
  Broker broker(dir.path(), mmfuse::test::free_port());
  ASSERT_TRUE(broker.start()) << "mosquitto did not start";
  Subscriber sub(broker.port());
  ASSERT_TRUE(wait_until([&] { return sub.subscriptions() == 1; }, 5000));

  store::StoreOptions opt;
  opt.sinks = {"mqtt"};
  opt.alarm_payload = alarm::alarm_payload;
  opt.dedupe_cooldown_ms = 0;
  auto s = store::Store::open(dir.path() / "data", opt);
  s->upsert_devices({{"dev-0", "Pump 0", "hall-a", "", nlohmann::json::array()}});
  alarm::MqttOptions mo;
  mo.port = broker.port();
  mo.client_id = "mmfuse-test-publisher";
  mo.publish_timeout_ms = 2000;
  auto sink = std::make_shared<alarm::MqttSink>(mo);
  ASSERT_TRUE(sink->wait_connected(5000));
  alarm::DispatcherOptions dopt;
  dopt.backoff_base_ms = 50;
  dopt.backoff_max_ms = 200;
  dopt.poll_interval_ms = 50;
  alarm::OutboxDispatcher dispatcher(*s, {sink}, dopt);

  // Broker up: every alarm goes out and is confirmed.
  std::vector<int64_t> expected = raise_alarms(*s, 0, 8);
  EXPECT_EQ(dispatcher.deliver_due_once(), 8);
  EXPECT_EQ(s->outbox_backlog().total, 0);
  ASSERT_TRUE(wait_until([&] { return sub.ids().size() >= 8; }, 5000));
  EXPECT_EQ(sub.topics().at(0), "mmfuse/alarms/hall-a/dev-0/camera");
  EXPECT_EQ(sub.topics().at(1), "mmfuse/alarms/_/dev-1/camera");  // device with no area

  // Broker down: alarms wait in the outbox and the backlog grows.
  broker.stop();
  ASSERT_TRUE(wait_until([&] { return !sink->connected(); }, 5000));
  auto more = raise_alarms(*s, 8, 6);
  expected.insert(expected.end(), more.begin(), more.end());
  EXPECT_EQ(dispatcher.deliver_due_once(), 0);
  auto more2 = raise_alarms(*s, 14, 4);
  expected.insert(expected.end(), more2.begin(), more2.end());
  EXPECT_EQ(dispatcher.deliver_due_once(), 0);
  EXPECT_EQ(s->outbox_backlog().total, 10);
  auto pending = s->pending_outbox("mqtt");
  EXPECT_GE(pending.at(0).attempts, 1);
  EXPECT_NE(pending.at(0).last_error.find("not connected"), std::string::npos)
      << pending.at(0).last_error;
  EXPECT_EQ(pending.at(1).attempts, 0);  // rows behind the head were not tried

  // Broker back (no persistence: a fresh broker): the subscriber re-subscribes, the
  // publisher reconnects, and the backlog drains.
  ASSERT_TRUE(broker.start());
  ASSERT_TRUE(wait_until([&] { return sub.subscriptions() == 2; }, 8000));
  ASSERT_TRUE(sink->wait_connected(8000));
  ASSERT_TRUE(wait_until(
      [&] {
        dispatcher.deliver_due_once();
        return s->outbox_backlog().total == 0;
      },
      8000));

  // The background thread, stopped with a flush.
  dispatcher.start();
  auto last = raise_alarms(*s, 18, 5);
  expected.insert(expected.end(), last.begin(), last.end());
  dispatcher.notify();
  dispatcher.stop(true);
  EXPECT_EQ(s->outbox_backlog().total, 0);

  ASSERT_TRUE(wait_until([&] { return sub.ids().size() >= expected.size(); }, 5000))
      << sub.ids().size() << " of " << expected.size() << " alarms arrived";
  EXPECT_TRUE(
      holds_for([&] { return sub.ids().size() == expected.size(); }, kLateDuplicateWindowMs))
      << "a duplicate arrived within " << kLateDuplicateWindowMs << " ms";
  EXPECT_EQ(sub.ids(), expected);  // each alarm id once, in order
  for (const auto& row : s->list_outbox(0, 1000)) EXPECT_GT(row.delivered_at_ms, 0);
}

// A broker that stops answering (SIGSTOP) after receiving a PUBLISH: no PUBACK within
// the timeout, so the row stays pending and is sent again later. The subscriber may
// then see that alarm twice: delivery is at-least-once, and the alarm id in the
// payload is what makes it exactly-once for a receiver that drops ids it has seen.
TEST(AlarmMqtt, UnconfirmedPublishIsRetriedAndReceiverDedupesById) {
  if (!Broker::available()) GTEST_SKIP() << Broker::kBinary << " is not installed";
  StoreTempDir dir;
  Broker broker(dir.path(), mmfuse::test::free_port());
  ASSERT_TRUE(broker.start());
  Subscriber sub(broker.port());
  ASSERT_TRUE(wait_until([&] { return sub.subscriptions() == 1; }, 5000));
  store::StoreOptions opt;
  opt.sinks = {"mqtt"};
  opt.alarm_payload = alarm::alarm_payload;
  opt.dedupe_cooldown_ms = 0;
  auto s = store::Store::open(dir.path() / "data", opt);
  alarm::MqttOptions mo;
  mo.port = broker.port();
  mo.client_id = "mmfuse-test-frozen";
  mo.publish_timeout_ms = 300;
  auto sink = std::make_shared<alarm::MqttSink>(mo);
  ASSERT_TRUE(sink->wait_connected(5000));
  alarm::DispatcherOptions dopt;
  dopt.backoff_base_ms = 20;
  dopt.backoff_max_ms = 50;
  alarm::OutboxDispatcher dispatcher(*s, {sink}, dopt);

  auto expected = raise_alarms(*s, 0, 3);
  broker.pause();
  EXPECT_EQ(dispatcher.deliver_due_once(), 0);  // times out waiting for PUBACK
  auto head = s->pending_outbox("mqtt").at(0);
  EXPECT_EQ(head.attempts, 1);
  EXPECT_NE(head.last_error.find("no PUBACK"), std::string::npos) << head.last_error;
  EXPECT_EQ(s->outbox_backlog().total, 3);
  broker.resume();
  ASSERT_TRUE(sink->wait_connected(8000));
  ASSERT_TRUE(wait_until(
      [&] {
        dispatcher.deliver_due_once();
        return s->outbox_backlog().total == 0;
      },
      8000));
  ASSERT_TRUE(wait_until([&] { return sub.ids().size() >= expected.size(); }, 5000))
      << sub.ids().size() << " of " << expected.size() << " alarms arrived";
  // The unconfirmed publish may arrive a second time, never more than that.
  EXPECT_TRUE(
      holds_for([&] { return sub.ids().size() <= expected.size() + 1; }, kLateDuplicateWindowMs))
      << sub.ids().size() << " messages for " << expected.size() << " alarms";
  // Receiver-side de-duplication by id: first arrivals are each alarm once, in order.
  std::vector<int64_t> firsts;
  for (int64_t id : sub.ids())
    if (std::find(firsts.begin(), firsts.end(), id) == firsts.end()) firsts.push_back(id);
  EXPECT_EQ(firsts, expected);
  EXPECT_LE(sub.ids().size(), expected.size() + 1);  // at most the one unconfirmed publish again
  std::printf("unconfirmed publish: %zu messages received for %zu alarms\n", sub.ids().size(),
              expected.size());
}
