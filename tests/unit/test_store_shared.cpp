// Work shared by several processes on one store (docs/scale-out.md), on each
// back-end: workers claiming a round's devices (a dead worker's claims taken over
// after the lease), outbox sinks delivered by whichever dispatcher holds the sink's
// lease (each alarm once per sink, in order); then, on a real PostgreSQL server,
// three `mmfuse inspect --store URL --once` processes splitting one round of a demo
// plant with every device inspected exactly once.
#include <sys/wait.h>

#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "alarm/alarm_payload.h"
#include "alarm/outbox_dispatcher.h"
#include "mmfuse/error.h"
#include "test_postgres_util.h"

namespace fs = std::filesystem;
using namespace mmfuse;
using mmfuse::test::make_record;
using StoreSharedP = mmfuse::test::StoreBackendTest;

namespace {

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::string> device_ids(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back("dev-" + std::to_string(100 + i));
  return out;
}

// A sink that records what it was given (per sink name), optionally failing.
class RecordingSink : public alarm::Sink {
 public:
  RecordingSink(std::string name, std::vector<int64_t>* got, std::mutex* mutex)
      : name_(std::move(name)), got_(got), mutex_(mutex) {}
  const std::string& name() const override { return name_; }
  alarm::DeliveryResult deliver(const store::OutboxEntry& e) override {
    std::lock_guard<std::mutex> lock(*mutex_);
    got_->push_back(e.alarm_id);
    return {true, ""};
  }

 private:
  std::string name_;
  std::vector<int64_t>* got_;
  std::mutex* mutex_;
};

}  // namespace

TEST_P(StoreSharedP, WorkersJoinOneRoundAndClaimEachDeviceOnce) {
  store::FakeClock clock;
  store::StoreOptions opt;
  opt.clock = &clock;
  auto a = open(opt);
  auto b = open(opt);  // a second process's connection to the same store
  const auto devices = device_ids(7);
  bool joined = true;
  const auto r = a->join_round(7, devices, "r1", &joined);
  EXPECT_FALSE(joined);
  EXPECT_EQ(r.id, "r1");
  const auto r2 = b->join_round(7, devices, "other", &joined);
  EXPECT_TRUE(joined);
  EXPECT_EQ(r2.id, "r1");
  EXPECT_EQ(a->open_devices("r1"), 7);

  const auto first = a->claim_devices("r1", "wa", 3, 60'000);
  EXPECT_EQ(first, (std::vector<std::string>{"dev-100", "dev-101", "dev-102"}));  // plant order
  const auto second = b->claim_devices("r1", "wb", 3, 60'000);
  EXPECT_EQ(second, (std::vector<std::string>{"dev-103", "dev-104", "dev-105"}));
  for (const auto& d : second) {
    b->record_inspection(make_record(d, false, "r1"));
    b->complete_device("r1", d, "wb", 60'000);
  }
  EXPECT_FALSE(b->finish_round_when_done("r1"));
  // Worker a dies holding three devices: nobody gets them until the lease runs out.
  EXPECT_EQ(b->claim_devices("r1", "wb", 10, 60'000), std::vector<std::string>{"dev-106"});
  EXPECT_TRUE(b->claim_devices("r1", "wb", 10, 60'000).empty());
  clock.advance_ms(60'001);
  const auto taken = b->claim_devices("r1", "wb", 10, 60'000);
  EXPECT_EQ(taken, (std::vector<std::string>{"dev-100", "dev-101", "dev-102", "dev-106"}));
  for (const auto& d : taken) b->complete_device("r1", d, "wb", 60'000);
  b->complete_device("r1", "dev-103", "wb", 60'000);  // idempotent
  EXPECT_EQ(a->open_devices("r1"), 0);
  EXPECT_TRUE(a->finish_round_when_done("r1"));
  EXPECT_TRUE(b->finish_round_when_done("r1"));
  EXPECT_EQ(a->round_progress("r1").status, store::RoundStatus::finished);
  EXPECT_EQ(a->round_progress("r1").position, 3);
  // The next join starts a new round.
  EXPECT_EQ(b->join_round(7, devices, "r2", &joined).id, "r2");
  EXPECT_FALSE(joined);
  // 3 + 3 + 1 claims, then the four expired ones (dev-106's lease ran out too).
  EXPECT_EQ(a->query_int("SELECT sum(claims) FROM round_claims WHERE round_id = 'r1'"), 11);
}

// A worker whose batch was cut off (the database went away) gives its undone devices
// back: anyone claims them at once instead of after the lease.
TEST_P(StoreSharedP, ReleasedClaimsAreClaimableAtOnce) {
  store::FakeClock clock;
  store::StoreOptions opt;
  opt.clock = &clock;
  auto a = open(opt);
  const auto devices = device_ids(4);
  a->join_round(4, devices, "r");
  EXPECT_EQ(a->claim_devices("r", "wa", 3, 60'000).size(), 3u);
  a->complete_device("r", "dev-100", "wa", 60'000);
  EXPECT_EQ(a->claim_devices("r", "wb", 4, 60'000), std::vector<std::string>{"dev-103"});
  EXPECT_EQ(a->release_claims("r", "wa"), 2);  // dev-101, dev-102; dev-100 stays done
  EXPECT_EQ(a->claim_devices("r", "wb", 4, 60'000),
            (std::vector<std::string>{"dev-101", "dev-102"}));
  EXPECT_EQ(a->release_claims("r", "wa"), 0);
  EXPECT_EQ(a->open_devices("r"), 3);
}

TEST_P(StoreSharedP, ConcurrentClaimersNeverShareADevice) {
  constexpr int kDevices = 60, kWorkers = 3;
  const auto devices = device_ids(kDevices);
  std::vector<std::unique_ptr<store::Store>> stores;
  for (int w = 0; w < kWorkers; ++w) stores.push_back(open());
  stores[0]->join_round(kDevices, devices, "r");
  std::mutex mutex;
  std::map<std::string, int> claimed;
  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w)
    threads.emplace_back([&, w] {
      const std::string name = "w" + std::to_string(w);
      for (;;) {
        const auto got = stores[w]->claim_devices("r", name, 2, 60'000);
        if (got.empty()) break;
        for (const auto& d : got) {
          {
            std::lock_guard<std::mutex> lock(mutex);
            ++claimed[d];
          }
          stores[w]->complete_device("r", d, name, 60'000);
        }
      }
    });
  for (auto& t : threads) t.join();
  ASSERT_EQ(claimed.size(), static_cast<size_t>(kDevices));
  for (const auto& [d, n] : claimed) EXPECT_EQ(n, 1) << d;
  EXPECT_TRUE(stores[1]->finish_round_when_done("r"));
}

TEST_P(StoreSharedP, OneDispatcherPerSinkDeliversEachAlarmOnceInOrder) {
  store::StoreOptions opt;
  opt.sinks = {"mqtt", "webhook"};
  opt.alarm_payload = alarm::alarm_payload;
  opt.dedupe_cooldown_ms = 0;
  auto writer = open(opt);
  std::vector<int64_t> alarms;
  const std::vector<std::string> names = {"m0", "m1", "m2", "m3"};
  for (int i = 0; i < 12; ++i)
    alarms.push_back(writer->record_inspection(make_record(names[i % 4], true)).alarm_id);
  // Three "processes", each with its own store connection and dispatcher over the
  // same sinks, passing in turn and at once.
  std::mutex mutex;
  std::map<std::string, std::vector<int64_t>> got;
  std::vector<std::unique_ptr<store::Store>> stores;
  std::vector<std::unique_ptr<alarm::OutboxDispatcher>> dispatchers;
  alarm::DispatcherOptions dopt;
  dopt.batch = 3;
  for (int p = 0; p < 3; ++p) {
    stores.push_back(open(opt));
    std::vector<std::shared_ptr<alarm::Sink>> sinks = {
        std::make_shared<RecordingSink>("mqtt", &got["mqtt"], &mutex),
        std::make_shared<RecordingSink>("webhook", &got["webhook"], &mutex)};
    dispatchers.push_back(
        std::make_unique<alarm::OutboxDispatcher>(*stores.back(), sinks, dopt));
  }
  std::vector<std::thread> threads;
  for (auto& d : dispatchers)
    threads.emplace_back([&d] {
      for (int i = 0; i < 5; ++i) d->deliver_due_once();
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(got["mqtt"], alarms);
  EXPECT_EQ(got["webhook"], alarms);
  EXPECT_EQ(writer->outbox_backlog().total, 0);
  // The holder gives its leases back when it goes: another dispatcher takes over at once.
  dispatchers.clear();
  const int64_t late = writer->record_inspection(make_record("late", true)).alarm_id;
  std::vector<int64_t> after;
  auto sink = std::make_shared<RecordingSink>("webhook", &after, &mutex);
  alarm::OutboxDispatcher next(*stores[2], {sink});
  EXPECT_EQ(next.deliver_due_once(), 1);
  EXPECT_EQ(after, std::vector<int64_t>{late});
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreSharedP,
                         ::testing::Values(mmfuse::test::StoreBackend::sqlite,
                                           mmfuse::test::StoreBackend::postgres),
                         mmfuse::test::backend_name);

// Three `mmfuse inspect --once` processes on one PostgreSQL database over a demo
// plant: one round, every device (and point) inspected exactly once, the claims all
// done, and the processes' own summaries adding up to the plant.
TEST(StoreWorkers, ThreeInspectProcessesSplitOneRoundOfADemoPlant) {
  if (!test::PostgresServer::available()) GTEST_SKIP() << test::PostgresServer::missing_message();
  std::string why;
  test::PostgresServer* pg = test::shared_postgres(&why);
  ASSERT_NE(pg, nullptr) << why;
  test::StoreTempDir dir;
  constexpr int kDevices = 12;
  const fs::path plant = dir.path() / "plant";
  // The plant only (no demo round): the workers fit what they claim.
  const std::string demo = std::string(MMFUSE_BINARY) + " demo --no-inspect --devices " +
                           std::to_string(kDevices) +
                           " --seed 3 --threads 2 --image-width 320 --image-height 240 "
                           "--ir-width 160 --ir-height 128 --audio-seconds 1 --sensor-seconds 30 "
                           "--baseline-clips 3 --baseline-clip-seconds 2 "
                           "--sensor-baseline-seconds 120 --data " +
                           plant.string() + " > /dev/null 2>&1";
  ASSERT_EQ(std::system(demo.c_str()), 0) << "mmfuse demo failed";
  const std::string url = pg->fresh_database();
  // Start all three, then wait: they join the same round and split its devices.
  std::vector<pid_t> pids;
  for (int w = 0; w < 3; ++w) {
    const fs::path out = dir.path() / ("worker" + std::to_string(w) + ".json");
    const std::string cmd = std::string(MMFUSE_BINARY) + " inspect --plant " +
                            (plant / "plant.yaml").string() + " --store " + url +
                            " --once --json --no-deliver --threads 1 > " + out.string() +
                            " 2>" + out.string() + ".err";
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "worker status " << status;
  }
  size_t devices_total = 0;
  std::set<std::string> rounds;
  for (int w = 0; w < 3; ++w) {
    const fs::path out = dir.path() / ("worker" + std::to_string(w) + ".json");
    auto j = nlohmann::json::parse(read_text(out), nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << read_text(out) << read_text(out.string() + ".err");
    devices_total += j["devices"].get<size_t>();
    rounds.insert(j["round_id"].get<std::string>());
    EXPECT_TRUE(j["finished"].get<bool>()) << j.dump();
    std::printf("worker %d: %zu devices\n", w, j["devices"].get<size_t>());
  }
  EXPECT_EQ(rounds.size(), 1u);
  EXPECT_EQ(devices_total, static_cast<size_t>(kDevices));

  store::StoreLocation where = store::parse_store_url(url);
  auto s = store::Store::open(where);
  const std::string round = *rounds.begin();
  EXPECT_EQ(s->query_int("SELECT count(*) FROM rounds"), 1);
  EXPECT_EQ(s->round_progress(round).status, store::RoundStatus::finished);
  // Exactly once: no (device, point) pair twice, and every device of the plant there.
  EXPECT_EQ(s->query_int("SELECT count(*) FROM (SELECT device_id, point_id FROM inspections "
                         "GROUP BY device_id, point_id HAVING count(*) > 1) x"),
            0);
  EXPECT_EQ(s->query_int("SELECT count(DISTINCT device_id) FROM inspections"), kDevices);
  EXPECT_EQ(s->query_int("SELECT count(*) FROM inspections"), s->round_progress(round).total);
  EXPECT_EQ(s->query_int("SELECT count(*) FROM round_claims WHERE done = 1"), kDevices);
  EXPECT_EQ(s->query_int("SELECT count(*) FROM round_claims WHERE claims != 1"), 0);
}
