// The PostgreSQL store across a server restart (docs/scale-out.md, "Failure
// behaviour"): calls made while the server is away throw store::StoreUnavailable (a
// configuration error, bad_input, when opening), the same Store works again once the
// server is back, and an outbox dispatcher that delivered a row just before the
// server died records the delivery after the restart instead of sending it twice.
#include <thread>

#include "alarm/alarm_payload.h"
#include "alarm/outbox_dispatcher.h"
#include "mmfuse/error.h"
#include "test_postgres_util.h"

using namespace mmfuse;
using mmfuse::test::make_record;

namespace {

// A server of the test's own (the tests kill it), with one database; skips where
// PostgreSQL is not installed.
class StoreReconnect : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::PostgresServer::available()) GTEST_SKIP() << test::PostgresServer::missing_message();
    std::string why;
    ASSERT_TRUE(pg_.start(&why)) << why;
    pg_.exec("postgres", "CREATE DATABASE plant");
    where_.kind = store::StoreKind::postgres;
    where_.conninfo = pg_.url("plant");
    where_.data_dir = dir_.path() / "data";
  }
  test::PostgresServer pg_;
  test::StoreTempDir dir_;
  store::StoreLocation where_;
};

// A sink that kills the database server right after it took a row, and has it
// restarted a little later by another thread.
class KillingSink : public alarm::Sink {
 public:
  KillingSink(test::PostgresServer& pg, std::vector<int64_t>* got) : pg_(pg), got_(got) {}
  ~KillingSink() override {
    if (restart_.joinable()) restart_.join();
  }
  const std::string& name() const override { return name_; }
  alarm::DeliveryResult deliver(const store::OutboxEntry& e) override {
    got_->push_back(e.alarm_id);
    if (!restart_.joinable()) {
      pg_.stop(true);
      restart_ = std::thread([this] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        std::string why;
        ok_ = pg_.start(&why);
      });
    }
    return {true, ""};
  }
  void join() {
    if (restart_.joinable()) restart_.join();
  }
  bool restarted() const { return ok_; }

 private:
  test::PostgresServer& pg_;
  std::vector<int64_t>* got_;
  std::string name_ = "webhook";
  std::thread restart_;
  bool ok_ = false;
};

}  // namespace

TEST_F(StoreReconnect, CallsFailAsUnavailableWhileTheServerIsDownAndWorkAfter) {
  auto s = store::Store::open(where_);
  s->record_inspection(make_record("dev-1", false));
  EXPECT_EQ(s->counts().inspections, 1);
  pg_.stop(true);  // kill -9: a crash, recovered from the WAL at the next start
  EXPECT_THROW(s->record_inspection(make_record("dev-2", false)), store::StoreUnavailable);
  EXPECT_THROW(s->counts(), store::StoreUnavailable);
  EXPECT_THROW(s->claim_devices("r", "w", 1, 1000), store::StoreUnavailable);
  // Opening while it is down is a configuration error naming the server (exit 2).
  try {
    store::Store::open(where_);
    ADD_FAILURE() << "opened a store while the server was down";
  } catch (const store::StoreUnavailable& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    EXPECT_NE(std::string(e.what()).find("cannot connect to PostgreSQL"), std::string::npos)
        << e.what();
  }
  std::string why;
  ASSERT_TRUE(pg_.start(&why)) << why;
  // The same Store reconnects: the write that failed was not recorded, the next one is.
  s->record_inspection(make_record("dev-3", false));
  EXPECT_EQ(s->counts().inspections, 2);
  EXPECT_EQ(s->query_int("SELECT count(*) FROM inspections WHERE device_id = 'dev-2'"), 0);
}

TEST_F(StoreReconnect, ADeliveryMadeAsTheServerDiesIsRecordedNotRepeated) {
  store::StoreOptions opt;
  opt.sinks = {"webhook"};
  opt.alarm_payload = alarm::alarm_payload;
  auto s = store::Store::open(where_, opt);
  const int64_t first = s->record_inspection(make_record("dev-1", true)).alarm_id;
  const int64_t second = s->record_inspection(make_record("dev-2", true)).alarm_id;
  std::vector<int64_t> got;
  auto sink = std::make_shared<KillingSink>(pg_, &got);
  alarm::DispatcherOptions dopt;
  dopt.lease_ms = 20000;  // mark_delivered retries for up to this long
  alarm::OutboxDispatcher d(*s, {sink}, dopt);
  EXPECT_EQ(d.deliver_due_once(), 2);
  sink->join();
  EXPECT_TRUE(sink->restarted());
  EXPECT_EQ(d.deliver_due_once(), 0);
  EXPECT_EQ(got, (std::vector<int64_t>{first, second}));
  EXPECT_EQ(s->outbox_backlog().total, 0);
}
