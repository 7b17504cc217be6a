// Webhook delivery against a real HTTP receiver (cpp-httplib on 127.0.0.1) that fails
// the first attempts: the outbox retries with exponential back-off (driven by a
// FakeClock), delivers in order, once per alarm id; a down sink does not hold back
// another sink. Plus the payload/topic format and the back-off arithmetic.
#include <httplib.h>

#include <map>
#include <mutex>

#include "alarm/alarm_payload.h"
#include "alarm/mqtt_sink.h"
#include "alarm/outbox_dispatcher.h"
#include "alarm/webhook_sink.h"
#include "mmfuse/error.h"
#include "test_store_util.h"

using namespace mmfuse;
using mmfuse::test::make_record;
using mmfuse::test::StoreTempDir;

namespace {

// A webhook receiver that answers 500 to the first `failures` attempts of each alarm id.
class Receiver {
 public:
  explicit Receiver(int failures) : failures_(failures) {
    server_.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mutex_);
      ++requests_;
      auto body = nlohmann::json::parse(req.body, nullptr, false);
      if (body.is_discarded() || !body.contains("id") ||
          req.get_header_value("Content-Type") != "application/json") {
        res.status = 400;
        return;
      }
      const int64_t id = body["id"].get<int64_t>();
      auth_ok_ = auth_ok_ && req.get_header_value("Authorization") == "Bearer s3cret";
      header_ok_ = header_ok_ && req.get_header_value("X-Mmfuse-Alarm-Id") == std::to_string(id);
      if (++attempts_[id] <= failures_) {
        res.status = 500;
        res.set_content("try later", "text/plain");
        return;
      }
      ++accepted_[id];
      order_.push_back(id);
      res.status = 200;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    mmfuse::test::wait_until([&] { return server_.is_running(); }, 5000);
  }
  ~Receiver() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
  int requests() {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }
  std::map<int64_t, int> accepted() {
    std::lock_guard<std::mutex> lock(mutex_);
    return accepted_;
  }
  std::vector<int64_t> order() {
    std::lock_guard<std::mutex> lock(mutex_);
    return order_;
  }
  bool headers_ok() {
    std::lock_guard<std::mutex> lock(mutex_);
    return auth_ok_ && header_ok_;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  int failures_;
  std::mutex mutex_;
  int requests_ = 0;
  bool auth_ok_ = true, header_ok_ = true;
  std::map<int64_t, int> attempts_, accepted_;
  std::vector<int64_t> order_;
};

}  // namespace

TEST(AlarmPayload, DocumentedFieldsAndTopicScheme) {
  store::AlarmRow a;
  a.id = 42;
  a.type = "infrared";
  a.device_id = "pump-7";
  a.point_id = "bearing";
  a.area = "hall-b";
  a.round_id = "round-1";
  a.inspection_id = 9;
  a.fused_score = 0.5;
  a.modalities = {{"infrared", {{"status", "anomaly"}, {"score", 0.8}}}};
  a.evidence = {"evidence/x.png"};
  a.created_ms = 1'700'000'000'123;
  auto j = nlohmann::json::parse(alarm::alarm_payload(a));
  EXPECT_EQ(j["id"], 42);
  EXPECT_EQ(j["type"], "infrared");
  EXPECT_EQ(j["device"], "pump-7");
  EXPECT_EQ(j["point"], "bearing");
  EXPECT_EQ(j["area"], "hall-b");
  EXPECT_EQ(j["fused_score"], 0.5);
  EXPECT_EQ(j["modalities"]["infrared"]["score"], 0.8);
  EXPECT_EQ(j["evidence"][0], "evidence/x.png");
  EXPECT_EQ(j["created"], "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(j["round_id"], "round-1");
  EXPECT_EQ(j["inspection_id"], 9);
  EXPECT_EQ(alarm::alarm_topic("mmfuse", "hall-b", "pump-7", "infrared"),
            "mmfuse/alarms/hall-b/pump-7/infrared");
  EXPECT_EQ(alarm::alarm_topic("site1/mmfuse/", "", "a/b+#", "sound"),
            "site1/mmfuse/alarms/_/a_b__/sound");
}

TEST(AlarmPayload, BackoffDoublesUpToTheCapWithJitterBelow) {
  alarm::DispatcherOptions o;
  o.backoff_base_ms = 1000;
  o.backoff_max_ms = 10000;
  o.jitter = 0.5;
  EXPECT_EQ(alarm::backoff_delay_ms(o, 1, 0.0), 1000);
  EXPECT_EQ(alarm::backoff_delay_ms(o, 2, 0.0), 2000);
  EXPECT_EQ(alarm::backoff_delay_ms(o, 4, 0.0), 8000);
  EXPECT_EQ(alarm::backoff_delay_ms(o, 5, 0.0), 10000);
  EXPECT_EQ(alarm::backoff_delay_ms(o, 60, 0.0), 10000);
  EXPECT_EQ(alarm::backoff_delay_ms(o, 2, 1.0), 1000);  // jitter takes up to half off
  EXPECT_EQ(alarm::backoff_delay_ms(o, 2, 0.5), 1500);
}

TEST(AlarmWebhook, RetriesWithBackoffAndDeliversEachAlarmOnceInOrder) {
  StoreTempDir dir;
  Receiver receiver(2);  // each alarm id fails twice, then succeeds
  store::FakeClock clock;
  store::StoreOptions opt;
  opt.clock = &clock;
  opt.sinks = {"webhook"};
  opt.alarm_payload = alarm::alarm_payload;
  opt.dedupe_cooldown_ms = 0;
  auto s = store::Store::open(dir.path(), opt);
  std::vector<int64_t> ids;
  for (int i = 0; i < 4; ++i)
    ids.push_back(s->record_inspection(make_record("m" + std::to_string(i), true)).alarm_id);

  alarm::WebhookOptions wo;
  wo.url = receiver.url();
  wo.bearer_token = "s3cret";
  alarm::DispatcherOptions dopt;
  dopt.backoff_base_ms = 1000;
  dopt.backoff_max_ms = 4000;
  dopt.seed = 7;
  alarm::OutboxDispatcher dispatcher(*s, {std::make_shared<alarm::WebhookSink>(wo)}, dopt);

  // First attempt fails: only the head row was tried, and it now waits 0.5-1 s.
  EXPECT_EQ(dispatcher.deliver_due_once(), 0);
  EXPECT_EQ(receiver.requests(), 1);
  auto head = s->list_outbox(ids[0]).at(0);
  EXPECT_EQ(head.attempts, 1);
  EXPECT_NE(head.last_error.find("HTTP 500"), std::string::npos) << head.last_error;
  EXPECT_GE(head.next_attempt_at_ms - clock.now_ms(), 500);
  EXPECT_LE(head.next_attempt_at_ms - clock.now_ms(), 1000);
  // Not due yet: nothing is sent, and the rows behind it wait too.
  EXPECT_EQ(dispatcher.deliver_due_once(), 0);
  EXPECT_EQ(receiver.requests(), 1);
  clock.advance_ms(1000);
  EXPECT_EQ(dispatcher.deliver_due_once(), 0);  // second failure: waits 1-2 s
  head = s->list_outbox(ids[0]).at(0);
  EXPECT_EQ(head.attempts, 2);
  EXPECT_GE(head.next_attempt_at_ms - clock.now_ms(), 1000);
  EXPECT_LE(head.next_attempt_at_ms - clock.now_ms(), 2000);
  EXPECT_EQ(s->outbox_backlog().total, 4);

  int passes = 0;
  while (s->outbox_backlog().total > 0 && passes++ < 100) {
    clock.advance_ms(4000);
    dispatcher.deliver_due_once();
  }
  EXPECT_EQ(s->outbox_backlog().total, 0);
  EXPECT_EQ(receiver.requests(), 4 * 3);
  EXPECT_EQ(receiver.order(), ids);  // in order
  for (int64_t id : ids) EXPECT_EQ(receiver.accepted()[id], 1) << "alarm " << id;
  for (const auto& row : s->list_outbox()) {
    EXPECT_EQ(row.attempts, 3);
    EXPECT_GT(row.delivered_at_ms, 0);
  }
  EXPECT_TRUE(receiver.headers_ok());
  EXPECT_EQ(dispatcher.stats().delivered, 4);
  EXPECT_EQ(dispatcher.stats().failures, 8);
}

TEST(AlarmWebhook, DownSinkWaitsWithoutHoldingBackAnotherSink) {
  StoreTempDir dir;
  Receiver receiver(0);
  store::StoreOptions opt;
  opt.sinks = {"mqtt", "webhook"};
  opt.alarm_payload = alarm::alarm_payload;
  opt.dedupe_cooldown_ms = 0;
  auto s = store::Store::open(dir.path(), opt);
  for (int i = 0; i < 3; ++i) s->record_inspection(make_record("m" + std::to_string(i), true));
  alarm::MqttOptions mo;
  mo.port = mmfuse::test::free_port();  // nobody listens there
  mo.client_id = "mmfuse-test-down";
  alarm::WebhookOptions wo;
  wo.url = receiver.url();
  auto mqtt = std::make_shared<alarm::MqttSink>(mo);
  alarm::OutboxDispatcher dispatcher(*s, {mqtt, std::make_shared<alarm::WebhookSink>(wo)});
  EXPECT_EQ(dispatcher.deliver_due_once(), 3);
  auto backlog = s->outbox_backlog();
  EXPECT_EQ(backlog.total, 3);
  EXPECT_EQ(backlog.by_sink["mqtt"], 3);
  EXPECT_EQ(backlog.by_sink.count("webhook"), 0u);
  EXPECT_EQ(receiver.accepted().size(), 3u);

  // An endpoint that refuses connections is a failed attempt, not an exception.
  alarm::WebhookOptions closed;
  closed.url = "http://127.0.0.1:" + std::to_string(mmfuse::test::free_port()) + "/hook";
  closed.connect_timeout_ms = 500;
  alarm::WebhookSink sink(closed);
  auto r = sink.deliver(s->list_outbox().at(0));
  EXPECT_FALSE(r.delivered);
  EXPECT_FALSE(r.error.empty());
  EXPECT_THROW(alarm::WebhookSink({"ftp://x", "", 1000, 1000, "webhook"}), Error);
}
