// The two back-ends side by side: the same rounds recorded into SQLite and into a
// real PostgreSQL server give the same rows, alarms, dashboard answers and retention
// figures (compared as the JSON the CLI and the API print); store URLs; a server that
// cannot be reached is a clear error, never a fallback to SQLite.
#include <libpq-fe.h>

#include "alarm/alarm_payload.h"
#include "mmfuse/error.h"
#include "test_postgres_util.h"

namespace fs = std::filesystem;
using namespace mmfuse;
using mmfuse::test::make_readings;
using mmfuse::test::make_record;
using mmfuse::test::StoreTempDir;

namespace {

// Everything a reader of the store can see, as JSON.
nlohmann::ordered_json snapshot(const store::Store& s) {
  nlohmann::ordered_json j;
  j["counts"] = store::to_json(s.counts());
  for (const auto& r : s.list_inspections({"", "", 0, 0, 1000}))
    j["inspections"].push_back(store::to_json(r));
  for (const auto& a : s.list_alarms({std::nullopt, "", 0, 0, 1000}))
    j["alarms"].push_back(store::to_json(a));
  for (const auto& d : s.device_status()) j["status"].push_back(store::to_json(d));
  for (const auto& st : s.alarm_stats(0))
    j["stats"].push_back({{"day", st.day}, {"type", st.type}, {"count", st.count}});
  for (const auto& r : s.list_rounds(100)) j["rounds"].push_back(store::to_json(r));
  for (const auto& t : s.sensor_trend("dev-1", "temperature", 0, 7))
    j["trend"].push_back({t.t_ms, t.value, t.min, t.max, t.samples});
  for (const auto& o : s.list_outbox(0, 1000))
    j["outbox"].push_back({o.id, o.alarm_id, o.sink, o.payload, o.attempts, o.delivered_at_ms});
  j["backlog"] = store::to_json(s.outbox_backlog());
  return j;
}

// Three rounds over five devices with alarms, repeats inside and outside the
// cooldown, acknowledgements, deliveries, then retention.
nlohmann::ordered_json run_scenario(store::Store& s, store::FakeClock& clock) {
  nlohmann::ordered_json out;
  std::vector<store::DeviceInfo> devices;
  for (int d = 0; d < 5; ++d)
    devices.push_back({"dev-" + std::to_string(d), "Device " + std::to_string(d),
                       "area-" + std::to_string(d % 2), "row " + std::to_string(d),
                       nlohmann::json::array({{{"id", "p1"}}})});
  s.upsert_devices(devices);
  for (int round = 0; round < 3; ++round) {
    const auto r = s.begin_round(5);
    for (int d = 0; d < 5; ++d) {
      const std::string dev = "dev-" + std::to_string(d);
      auto rec = make_record(dev, (d + round) % 3 == 0, r.id,
                             {"evidence/" + r.id + "/" + dev + ".png"});
      rec.fused_score = 0.1 * d + 0.01 * round + 1.0 / 3.0;
      if (d == 4) rec.alarm_type = "infrared";
      const auto o = s.record_inspection(rec, make_readings(dev, 3 + d, clock.now_ms()));
      out["outcomes"].push_back({o.inspection_id, o.alarm_id, o.deduplicated});
      clock.advance_ms(1000);
    }
    s.finish_round(r.id);
    clock.advance_ms(round == 0 ? 30'000 : 3 * store::kMsPerDay);
  }
  const auto alarms = s.list_alarms({std::nullopt, "", 0, 0, 1000});
  if (!alarms.empty()) {
    s.acknowledge_alarm(alarms.back().id, "alice");
    s.acknowledge_alarm(alarms.back().id, "bob");  // idempotent
  }
  for (const auto& row : s.pending_outbox("mqtt", 3)) s.mark_delivered(row.id, clock.now_ms());
  for (const auto& row : s.pending_outbox("webhook", 1))
    s.mark_failed(row.id, "HTTP 503", clock.now_ms() + 5000);
  s.record_readings(make_readings("dev-1", 4, clock.now_ms()));
  out["before_prune"] = snapshot(s);
  clock.advance_ms(3 * store::kMsPerDay);
  out["pruned"] = store::to_json(s.prune(5));
  out["after_prune"] = snapshot(s);
  return out;
}

}  // namespace

TEST(StoreBackends, SameRoundsGiveTheSameResultsOnSqliteAndPostgres) {
  if (!test::PostgresServer::available()) GTEST_SKIP() << test::PostgresServer::missing_message();
  std::string why;
  test::PostgresServer* pg = test::shared_postgres(&why);
  ASSERT_NE(pg, nullptr) << why;
  StoreTempDir dir;
  store::StoreOptions opt;
  opt.sinks = {"mqtt", "webhook"};
  opt.alarm_payload = alarm::alarm_payload;
  opt.dedupe_cooldown_ms = 60'000;

  store::FakeClock clock_a, clock_b;
  opt.clock = &clock_a;
  auto lite = store::Store::open(dir.path() / "lite", opt);
  const auto a = run_scenario(*lite, clock_a);

  store::StoreLocation where;
  where.kind = store::StoreKind::postgres;
  where.conninfo = pg->fresh_database();
  where.data_dir = dir.path() / "lite";  // the same evidence paths on both sides
  opt.clock = &clock_b;
  auto post = store::Store::open(where, opt);
  const auto b = run_scenario(*post, clock_b);

  ASSERT_FALSE(a["before_prune"]["alarms"].empty());
  EXPECT_GT(a["pruned"]["inspections"].get<int>(), 0);
  EXPECT_EQ(a["outcomes"], b["outcomes"]);
  EXPECT_EQ(a["before_prune"], b["before_prune"]);
  EXPECT_EQ(a["pruned"], b["pruned"]);
  EXPECT_EQ(a["after_prune"], b["after_prune"]);
  if (a != b) {
    std::fprintf(stderr, "sqlite:   %s\npostgres: %s\n", a.dump().c_str(), b.dump().c_str());
  }
}

TEST(StoreBackends, ParsesStoreUrls) {
  auto pg = store::parse_store_url("postgresql://u:secret@db:5433/plant");
  EXPECT_EQ(pg.kind, store::StoreKind::postgres);
  EXPECT_EQ(pg.conninfo, "postgresql://u:secret@db:5433/plant");
  EXPECT_EQ(store::parse_store_url("postgres://db/plant").kind, store::StoreKind::postgres);
  auto env = store::parse_store_url("postgresql:");
  EXPECT_EQ(env.kind, store::StoreKind::postgres);
  EXPECT_EQ(env.conninfo, "");
  auto file = store::parse_store_url("sqlite:///var/lib/mmfuse/store.db");
  EXPECT_EQ(file.kind, store::StoreKind::sqlite);
  EXPECT_EQ(file.db_file, fs::path("/var/lib/mmfuse/store.db"));
  EXPECT_EQ(file.data_dir, fs::path("/var/lib/mmfuse"));
  auto folder = store::parse_store_url("sqlite:///var/lib/mmfuse/data");
  EXPECT_EQ(folder.db_file, fs::path("/var/lib/mmfuse/data/mmfuse.db"));
  EXPECT_EQ(store::redact_store_url("postgresql://u:secret@db/plant"),
            "postgresql://u:***@db/plant");
  for (const char* bad : {"mysql://db/plant", "/var/lib/x.db", "", "sqlite:"}) {
    try {
      store::parse_store_url(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::bad_input) << bad;
    }
  }
  try {
    store::parse_store_url("mysql://u:secret@db/plant");
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("secret"), std::string::npos) << e.what();
  }
}

TEST(StoreBackends, UnreachableOrRefusingServerIsBadInputNotAFallback) {
  StoreTempDir dir;
  store::StoreLocation where;
  where.kind = store::StoreKind::postgres;
  where.conninfo =
      "postgresql://mmfuse@127.0.0.1:" + std::to_string(test::free_port()) + "/none";
  where.data_dir = dir.path() / "data";
  try {
    store::Store::open(where);
    FAIL() << "opened a store on a closed port";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    EXPECT_NE(std::string(e.what()).find("cannot connect to PostgreSQL"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(dir.path() / "data" / "mmfuse.db"));
  if (!test::PostgresServer::available()) return;
  std::string why;
  test::PostgresServer* pg = test::shared_postgres(&why);
  ASSERT_NE(pg, nullptr) << why;
  where.conninfo = pg->url("no_such_database");
  EXPECT_THROW(store::Store::open(where), Error);
}
