// `mmfuse alarms ...` and `mmfuse store ...` on a data directory written through the
// Store API: JSON on stdout, exit code 2 with a message for bad input.
#include <httplib.h>

#include <cstdio>

#include "alarm/alarm_payload.h"
#include "test_postgres_util.h"

using namespace mmfuse;
using mmfuse::test::make_record;
using mmfuse::test::StoreTempDir;

namespace {

using Run = test::CliRun;
Run run(const std::string& args) { return test::run_mmfuse(args); }

nlohmann::json json_of(const Run& r) {
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.out;
  return j;
}

}  // namespace

TEST(StoreCli, ListAckStatsInfoPruneAndDeliver) {
  StoreTempDir dir;
  const std::string data = (dir.path() / "data").string();
  int64_t first = 0;
  {
    store::StoreOptions opt;
    opt.sinks = {"webhook"};
    opt.alarm_payload = alarm::alarm_payload;
    opt.dedupe_cooldown_ms = 0;
    auto s = store::Store::open(data, opt);
    first = s->record_inspection(make_record("m1", true)).alarm_id;
    s->record_inspection(make_record("m2", true));
    s->record_inspection(make_record("m2", false));
  }
  auto list = run("alarms list --data " + data);
  ASSERT_EQ(list.code, 0);
  auto j = json_of(list);
  ASSERT_EQ(j["alarms"].size(), 2u);
  EXPECT_EQ(j["alarms"][0]["device"], "m2");  // newest first
  EXPECT_EQ(json_of(run("alarms list --device m1 --data " + data))["alarms"].size(), 1u);

  auto ack = run("alarms ack --data " + data + " --id " + std::to_string(first) + " --user ops");
  ASSERT_EQ(ack.code, 0);
  EXPECT_EQ(json_of(ack)["alarm"]["acknowledged_by"], "ops");
  EXPECT_EQ(json_of(run("alarms list --open --data " + data))["alarms"].size(), 1u);
  EXPECT_EQ(json_of(run("alarms list --acked --data " + data))["alarms"].size(), 1u);
  EXPECT_EQ(run("alarms ack --data " + data + " --id 999 --user ops").code, 2);
  EXPECT_EQ(run("alarms list --data " + (dir.path() / "none").string()).code, 2);
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "none"));  // never created by a reader
  EXPECT_EQ(run("alarms list --open --acked --data " + data).code, 2);

  auto stats = json_of(run("alarms stats --data " + data));
  ASSERT_EQ(stats["stats"].size(), 1u);
  EXPECT_EQ(stats["stats"][0]["count"], 2);

  auto info = json_of(run("store info --data " + data));
  EXPECT_EQ(info["integrity"], "ok");
  EXPECT_EQ(info["schema_version"], store::Store::kSchemaVersion);
  EXPECT_EQ(info["devices"], 0);  // none registered through upsert_devices
  EXPECT_EQ(info["counts"]["inspections"], 3);
  EXPECT_EQ(info["counts"]["alarms"], 2);
  EXPECT_EQ(info["open_alarms"], 1);
  EXPECT_EQ(info["outbox"]["total"], 2);

  // Deliver the two webhook rows to a receiver that accepts them.
  httplib::Server server;
  int posts = 0;
  server.Post("/hook", [&](const httplib::Request&, httplib::Response& res) {
    ++posts;
    res.status = 204;
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread t([&] { server.listen_after_bind(); });
  mmfuse::test::wait_until([&] { return server.is_running(); }, 5000);
  auto del = run("alarms deliver --data " + data +
                 " --webhook http://127.0.0.1:" + std::to_string(port) + "/hook");
  server.stop();
  t.join();
  ASSERT_EQ(del.code, 0);
  EXPECT_EQ(json_of(del)["delivered"], 2);
  EXPECT_EQ(json_of(del)["backlog"]["total"], 0);
  EXPECT_EQ(posts, 2);
  EXPECT_EQ(run("alarms deliver --data " + data).code, 2);  // no sink given

  auto pruned = json_of(run("store prune --days 1 --data " + data));
  EXPECT_EQ(pruned["pruned"]["inspections"], 0);  // all recorded just now
  EXPECT_EQ(run("store prune --days 0 --data " + data).code, 2);
}

// The same commands with --store URL on each back-end; bad URLs and unreachable
// servers are exit 2 with a message, and nothing falls back to SQLite.
using StoreCliP = mmfuse::test::StoreBackendTest;

TEST_P(StoreCliP, InfoListAckWithStoreUrl) {
  {
    store::StoreOptions opt;
    opt.sinks = {"webhook"};
    opt.alarm_payload = alarm::alarm_payload;
    auto s = open(opt);
    s->record_inspection(make_record("m1", true));
    s->record_inspection(make_record("m2", false));
  }
  const std::string store = " --store '" + url() + "'";
  auto info = run("store info" + store);
  ASSERT_EQ(info.code, 0) << info.out;
  auto j = json_of(info);
  EXPECT_EQ(j["backend"], postgres() ? "postgresql" : "sqlite");
  EXPECT_EQ(j["schema_version"], store::Store::kSchemaVersion);
  EXPECT_EQ(j["integrity"], "ok");
  EXPECT_EQ(j["counts"]["inspections"], 2);
  EXPECT_EQ(j["counts"]["alarms"], 1);
  EXPECT_EQ(j["outbox"]["total"], 1);
  auto list = json_of(run("alarms list" + store));
  ASSERT_EQ(list["alarms"].size(), 1u);
  const int64_t id = list["alarms"][0]["id"];
  EXPECT_EQ(run("alarms ack --id " + std::to_string(id) + " --user ops" + store).code, 0);
  EXPECT_EQ(json_of(run("alarms list --open" + store))["alarms"].size(), 0u);
  EXPECT_EQ(run("store prune --days 1" + store).code, 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreCliP,
                         ::testing::Values(mmfuse::test::StoreBackend::sqlite,
                                           mmfuse::test::StoreBackend::postgres),
                         mmfuse::test::backend_name);

TEST(StoreCli, BadOrUnreachableStoreIsExitTwo) {
  StoreTempDir dir;
  EXPECT_EQ(run("store info --store mysql://db/plant").code, 2);
  EXPECT_EQ(run("store info --store sqlite:").code, 2);
  const std::string closed =
      "postgresql://mmfuse@127.0.0.1:" + std::to_string(mmfuse::test::free_port()) + "/x";
  const std::string cmd = std::string(MMFUSE_BINARY) + " store info --store " + closed + " 2>&1";
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  EXPECT_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 2);
  EXPECT_NE(out.find("cannot connect to PostgreSQL"), std::string::npos) << out;
  // A sqlite:// URL naming a missing store is not_found, and nothing is created.
  EXPECT_EQ(run("alarms list --store sqlite://" + (dir.path() / "none" / "x.db").string()).code, 2);
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "none"));
}

// Bad PostgreSQL configuration at start, for every command that takes --store: exit 2
// with a message naming the problem, never a silent SQLite store instead.
TEST(StoreCli, BadPostgresConfigurationIsExitTwoForEveryCommand) {
  if (!mmfuse::test::PostgresServer::available())
    GTEST_SKIP() << mmfuse::test::PostgresServer::missing_message();
  std::string why;
  mmfuse::test::PostgresServer* pg = mmfuse::test::shared_postgres(&why);
  ASSERT_NE(pg, nullptr) << why;
  StoreTempDir dir;
  const auto plant = dir.path() / "plant.yaml";
  std::ofstream(plant) << "plant: t\ndata_dir: data\ndevices:\n  - id: d1\n    points:\n"
                          "      - id: p1\n        camera: {image: cam/, golden: golden.png}\n";
  // A schema from a newer mmfuse.
  const std::string newer = pg->fresh_database();
  store::StoreLocation where = store::parse_store_url(newer);
  where.data_dir = dir.path() / "x";
  store::Store::open(where);
  const std::string newer_db = newer.substr(newer.rfind('/') + 1);
  pg->exec(newer_db, "INSERT INTO schema_version(version, applied_ms) VALUES(99, 0)");
  pg->require_password("guarded", "right");
  const std::string cases[][2] = {
      {"postgresql://mmfuse@127.0.0.1:" + std::to_string(mmfuse::test::free_port()) + "/x",
       "cannot connect to PostgreSQL (127.0.0.1:"},
      {"postgresql://guarded:wrong@127.0.0.1:" + std::to_string(pg->port()) + "/postgres",
       "password authentication failed for user \"guarded\""},
      {newer, "schema version 99 is newer than this mmfuse knows"},
  };
  const std::string commands[] = {"store info", "alarms list", "inspect --once --plant " +
                                                                   plant.string(),
                                  "serve --port 0"};
  for (const auto& c : cases)
    for (const auto& command : commands) {
      SCOPED_TRACE(command + " --store " + c[0]);
      // `timeout`: a serve that started anyway would otherwise run for ever.
      const std::string cmd = "timeout 60 " + std::string(MMFUSE_BINARY) + " " + command +
                              " --store " + c[0] + " 2>&1";
      std::string out;
      FILE* p = ::popen(cmd.c_str(), "r");
      ASSERT_NE(p, nullptr);
      char buf[4096];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
      const int status = ::pclose(p);
      EXPECT_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 2) << out;
      EXPECT_NE(out.find(c[1]), std::string::npos) << out;
      EXPECT_EQ(out.find("wrong"), std::string::npos) << "the password was repeated: " << out;
    }
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "data" / "mmfuse.db"));
}
