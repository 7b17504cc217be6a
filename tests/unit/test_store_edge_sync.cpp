// Edge -> centre forwarding (store/edge_sync.h, docs/scale-out.md) from a SQLite edge
// to a real PostgreSQL centre: everything arrives once with its links, a resend
// changes nothing, acknowledgements made at the centre survive the edge's updates,
// each side keeps its own retention; the centre stopped while the edge keeps
// inspecting (and pruning), restarted, the two converge; bad configuration is a clear
// error; `mmfuse store sync` on the command line.
#include <algorithm>
#include <cstdio>

#include "mmfuse/error.h"
#include "store/edge_sync.h"
#include "test_postgres_util.h"

namespace fs = std::filesystem;
using namespace mmfuse;
using mmfuse::test::make_readings;
using mmfuse::test::make_record;
using mmfuse::test::PostgresServer;
using mmfuse::test::StoreTempDir;

namespace {

// Every inspection and alarm of a store as comparable text: the JSON forms without
// the store's own ids, round ids without the centre's "<edge>/" prefix, and the
// alarm an inspection points at (and the inspection an alarm points at) by content.
std::vector<std::string> fingerprint(const store::Store& s) {
  auto strip = [](std::string round) {
    const size_t slash = round.find('/');
    return slash == std::string::npos ? round : round.substr(slash + 1);
  };
  std::vector<std::string> out;
  store::InspectionFilter f;
  f.limit = 1000000;
  for (const auto& row : s.list_inspections(f)) {
    auto j = store::to_json(row);
    j.erase("id");
    j.erase("alarm_id");
    j["round_id"] = strip(row.record.round_id);
    if (row.alarm_id > 0) {
      auto a = s.find_alarm(row.alarm_id);
      j["alarm_of"] = a ? a->dedupe_key + "@" + std::to_string(a->created_ms) : "missing";
    }
    out.push_back("inspection " + j.dump());
  }
  store::AlarmFilter af;
  af.limit = 1000000;
  for (const auto& a : s.list_alarms(af)) {
    auto j = store::to_json(a);
    j.erase("id");
    j.erase("inspection_id");
    j["round_id"] = strip(a.round_id);
    if (a.inspection_id > 0) {
      auto i = s.find_inspection(a.inspection_id);
      j["inspection_of"] =
          i ? i->record.device_id + "@" + std::to_string(i->created_ms) : "missing";
    }
    out.push_back("alarm " + j.dump());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class EdgeSyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PostgresServer::available()) GTEST_SKIP() << PostgresServer::missing_message();
    std::string why;
    pg_ = mmfuse::test::shared_postgres(&why);
    ASSERT_NE(pg_, nullptr) << "PostgreSQL test server: " << why;
    centre_url_ = pg_->fresh_database();
    options_.clock = &clock_;
    options_.dedupe_cooldown_ms = 10 * 60 * 1000;
  }
  std::unique_ptr<store::Store> edge(const std::string& name = "edge") {
    return store::Store::open(dir_.path() / name, options_);
  }
  std::unique_ptr<store::Store> centre() {
    return store::Store::open(store::parse_store_url(centre_url_), options_);
  }
  // A round over `n` inspections on devices d0..d3: readings with each, an alarm (with
  // an evidence file) every third one, repeats de-duplicated within the cooldown.
  std::string round(store::Store& s, int n) {
    const auto r = s.begin_round(n);
    for (int i = 0; i < n; ++i) {
      clock_.advance_ms(1000);
      std::string device = "d";  // (appended: GCC 12 warns on "d" + std::string here)
      device += std::to_string(i % 4);
      const bool alarm = i % 3 == 0;
      std::vector<std::string> evidence;
      if (alarm) {
        std::string name = r.id;  // (built up: GCC 12 warns on a + chain here)
        name += "-" + std::to_string(i) + ".png";
        const fs::path p = s.evidence_dir() / name;
        mmfuse::test::touch_file(p);
        evidence.push_back(p.string());
      }
      s.record_inspection(make_record(device, alarm, r.id, evidence),
                          make_readings(device, 5, clock_.now_ms()));
    }
    s.finish_round(r.id);
    return r.id;
  }
  int64_t count(const store::Store& s, const std::string& sql) { return s.query_int(sql); }
  // No edge row twice at the centre.
  void expect_no_duplicates(const store::Store& c) {
    for (const char* t : {"inspections", "alarms"})
      EXPECT_EQ(count(c, std::string("SELECT count(*) FROM ") + t + " WHERE edge_id != ''"),
                count(c, std::string("SELECT count(*) FROM (SELECT DISTINCT edge_id, edge_row_id "
                                     "FROM ") +
                             t + " WHERE edge_id != '') x"))
          << t;
  }

  store::FakeClock clock_{1'800'000'000'000};
  store::StoreOptions options_;
  StoreTempDir dir_;
  PostgresServer* pg_ = nullptr;
  std::string centre_url_;
};

}  // namespace

TEST_F(EdgeSyncTest, ForwardsEverythingOnceAndAResendChangesNothing) {
  auto e = edge();
  auto c = centre();
  std::vector<store::DeviceInfo> devices;
  for (int i = 0; i < 4; ++i)
    devices.push_back({"d" + std::to_string(i), "pump", "hall-2", "", {}});
  e->upsert_devices(devices);
  round(*e, 9);
  round(*e, 5);
  const auto alarms = e->list_alarms();
  ASSERT_GE(alarms.size(), 3u);
  e->acknowledge_alarm(alarms.back().id, "edge-op");  // acknowledged on the edge

  store::ForwardOptions fo;
  fo.edge_id = "edge-a";
  fo.batch_inspections = 4;  // several centre transactions
  auto rep = store::EdgeSync::forward(*e, *c, centre_url_, fo);
  EXPECT_EQ(rep.edge_id, "edge-a");
  EXPECT_EQ(rep.inspections, 14);
  EXPECT_GE(rep.batches, 4);
  EXPECT_EQ(fingerprint(*c), fingerprint(*e));
  const auto ec = e->counts(), cc = c->counts();
  EXPECT_EQ(cc.inspections, ec.inspections);
  EXPECT_EQ(cc.readings, ec.readings);
  EXPECT_EQ(cc.alarms, ec.alarms);
  EXPECT_EQ(cc.devices, ec.devices);
  EXPECT_EQ(cc.rounds, ec.rounds);
  EXPECT_EQ(count(*c, "SELECT count(*) FROM evidence_refs"),
            count(*e, "SELECT count(*) FROM evidence_refs"));
  EXPECT_EQ(count(*c, "SELECT count(*) FROM outbox"), 0);  // the edge delivers its own alarms
  // The centre's rounds are the edge's, named after it, and never joined by its workers.
  EXPECT_EQ(c->list_rounds().front().id.rfind("edge-a/round-", 0), 0u);
  EXPECT_FALSE(c->resume_round().has_value());

  // Again: nothing new. A full resend (the centre's mark wiped) duplicates nothing.
  rep = store::EdgeSync::forward(*e, *c, centre_url_, fo);
  EXPECT_EQ(rep.inspections, 0);
  EXPECT_EQ(rep.batches, 1);  // the devices refresh only
  const std::string db = centre_url_.substr(centre_url_.rfind('/') + 1);
  pg_->exec(db, "UPDATE edge_marks SET rev = 0");
  rep = store::EdgeSync::forward(*e, *c, centre_url_, fo);
  EXPECT_EQ(rep.inspections, 0);
  EXPECT_GE(rep.alarms, 3);
  EXPECT_EQ(fingerprint(*c), fingerprint(*e));
  expect_no_duplicates(*c);

  // Acknowledged at the centre, then the edge sees the fault again (repeats grow):
  // the centre keeps its acknowledgement and takes the new counts.
  store::AlarmFilter unacknowledged;
  unacknowledged.acknowledged = false;
  const auto open = c->list_alarms(unacknowledged);
  ASSERT_FALSE(open.empty());
  const auto& target = open.front();
  c->acknowledge_alarm(target.id, "centre-op");
  clock_.advance_ms(1000);
  auto again = make_record(target.device_id, true, "");
  e->record_inspection(again);
  store::EdgeSync::forward(*e, *c, centre_url_, fo);
  const auto after = c->find_alarm(target.id);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->acknowledged_by, "centre-op");
  EXPECT_EQ(after->repeats, target.repeats + 1);
  EXPECT_EQ(c->counts().inspections, e->counts().inspections);

  // Retention on each side: the edge drops what is 7 days old (all forwarded); the
  // centre, with its own 30 days, keeps the history.
  clock_.advance_ms(8 * store::kMsPerDay);
  e->prune(7);
  EXPECT_EQ(e->counts().inspections, 0);
  c->prune(30);
  EXPECT_EQ(c->counts().inspections, 15);
}

TEST_F(EdgeSyncTest, CentreStoppedWhileTheEdgeKeepsInspectingThenBothConverge) {
  auto e = edge();
  std::vector<std::string> log;
  store::ForwardOptions fo;
  fo.edge_id = "edge-b";
  store::EdgeForwarder fwd(*e, centre_url_, fo, 60'000,
                           [&](const std::string& line) { log.push_back(line); });
  round(*e, 6);
  ASSERT_TRUE(fwd.pass(true));

  pg_->stop();  // the centre goes away; the edge keeps inspecting
  round(*e, 7);
  EXPECT_FALSE(fwd.pass());
  EXPECT_FALSE(fwd.pass());  // logged once per distinct error
  ASSERT_EQ(log.size(), 1u);
  auto marks = store::EdgeSync::marks(*e);
  ASSERT_EQ(marks.size(), 1u);
  EXPECT_EQ(marks[0].pending_inspections, 7);
  EXPECT_FALSE(marks[0].last_error.empty());
  // A week later, still down: the edge's retention drops the forwarded round only.
  clock_.advance_ms(8 * store::kMsPerDay);
  const auto pruned = e->prune(7);
  EXPECT_EQ(pruned.inspections, 6);
  EXPECT_EQ(e->counts().inspections, 7);
  round(*e, 4);

  std::string why;
  ASSERT_TRUE(pg_->start(&why)) << why;
  fwd.start();                // the background thread: a first pass at once
  fwd.stop(true);             // and one more on the way out
  EXPECT_EQ(log.size(), 2u);  // "works again"
  marks = store::EdgeSync::marks(*e);
  EXPECT_EQ(marks[0].pending_inspections, 0);
  EXPECT_EQ(marks[0].forwarded, 17);
  EXPECT_TRUE(marks[0].last_error.empty());

  auto c = centre();
  EXPECT_EQ(c->counts().inspections, 17);
  EXPECT_EQ(c->counts().alarms, e->counts().alarms);
  expect_no_duplicates(*c);
  // Every inspection the edge still has is at the centre, identical (alarms differ in
  // one way: the edge's point at inspections it pruned, the centre's still link them).
  const auto on_edge = fingerprint(*e), on_centre = fingerprint(*c);
  for (const auto& row : on_edge)
    if (row.rfind("inspection ", 0) == 0) {
      EXPECT_TRUE(std::binary_search(on_centre.begin(), on_centre.end(), row)) << row;
    }
  // With nothing left unforwarded the edge's retention catches up.
  clock_.advance_ms(8 * store::kMsPerDay);
  e->prune(7);
  EXPECT_EQ(e->counts().inspections, 0);
  EXPECT_EQ(c->counts().inspections, 17);
}

TEST_F(EdgeSyncTest, BadConfigurationIsAClearError) {
  auto e = edge();
  round(*e, 2);
  store::ForwardOptions fo;
  fo.edge_id = "edge-c";
  {
    // Unreachable centre: an outage, retried (not a configuration error).
    const std::string down =
        "postgresql://mmfuse@127.0.0.1:" + std::to_string(mmfuse::test::free_port()) + "/x";
    store::EdgeForwarder fwd(*e, down, fo, 60'000, nullptr);
    EXPECT_FALSE(fwd.pass(true));
    const auto marks = store::EdgeSync::marks(*e);
    ASSERT_EQ(marks.size(), 1u);
    EXPECT_NE(marks[0].last_error.find("cannot connect to PostgreSQL"), std::string::npos)
        << marks[0].last_error;
    EXPECT_TRUE(store::EdgeSync::forget_target(*e, down));  // retention stops waiting for it
  }
  {
    // A centre whose schema is newer than this build: refused.
    auto c = centre();
    c.reset();
    pg_->exec(centre_url_.substr(centre_url_.rfind('/') + 1),
              "INSERT INTO schema_version(version, applied_ms) VALUES(99, 0)");
    store::EdgeForwarder fwd(*e, centre_url_, fo, 60'000, nullptr);
    try {
      fwd.pass(true);
      ADD_FAILURE() << "a newer centre schema was accepted";
    } catch (const Error& err) {
      EXPECT_EQ(err.kind(), ErrorKind::unsupported) << err.what();
    }
  }
  centre_url_ = pg_->fresh_database();
  auto c = centre();
  store::EdgeSync::forward(*e, *c, centre_url_, fo);
  // Another store under the same edge id would mix two histories: refused.
  auto other = edge("other");
  round(*other, 1);
  try {
    store::EdgeSync::forward(*other, *c, centre_url_, fo);
    ADD_FAILURE() << "a second store under one edge id was accepted";
  } catch (const Error& err) {
    EXPECT_EQ(err.kind(), ErrorKind::bad_input);
    EXPECT_NE(std::string(err.what()).find("already holds edge 'edge-c'"), std::string::npos);
  }
  // The edge id is kept per centre; another one for the same centre is refused.
  fo.edge_id = "edge-renamed";
  EXPECT_THROW(store::EdgeSync::forward(*e, *c, centre_url_, fo), Error);
  // A store is not its own centre.
  EXPECT_THROW(store::EdgeSync::forward(*e, *e, "sqlite:///x", {}), Error);
  EXPECT_EQ(c->counts().inspections, 2);
}

TEST_F(EdgeSyncTest, StoreSyncCommandForwardsOnceAndReportsTheMark) {
  const fs::path data = dir_.path() / "edge";
  {
    auto e = edge();
    round(*e, 3);
  }
  auto r = test::run_mmfuse("store sync --data " + data.string() + " --to " + centre_url_ +
                   " --edge-id cli-edge");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["forwarded"]["edge_id"], "cli-edge");
  EXPECT_EQ(j["forwarded"]["inspections"], 3);
  EXPECT_EQ(j["forward"][0]["pending_inspections"], 0);
  r = test::run_mmfuse("store sync --data " + data.string() + " --to " + centre_url_);  // id kept
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out)["forwarded"]["inspections"], 0);
  r = test::run_mmfuse("store info --data " + data.string());
  ASSERT_EQ(r.code, 0);
  EXPECT_EQ(nlohmann::json::parse(r.out)["forward"][0]["edge_id"], "cli-edge");
  r = test::run_mmfuse("store info --store " + centre_url_);  // the centre lists its edges
  ASSERT_EQ(r.code, 0);
  EXPECT_EQ(nlohmann::json::parse(r.out)["edges"][0]["edge_id"], "cli-edge");
  // An unreachable centre: exit 2, the edge keeps its rows for the next run.
  r = test::run_mmfuse("store sync --data " + data.string() + " --to postgresql://mmfuse@127.0.0.1:" +
              std::to_string(mmfuse::test::free_port()) + "/x");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(centre()->counts().inspections, 3);
}
