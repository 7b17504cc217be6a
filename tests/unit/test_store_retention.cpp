// Retention with a FakeClock: old rows and their evidence files go, recent ones and
// anything still referenced (unacknowledged alarms, undelivered outbox rows) stay.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "alarm/alarm_payload.h"
#include "test_postgres_util.h"

namespace fs = std::filesystem;
using namespace mmfuse;
using mmfuse::test::make_readings;
using mmfuse::test::make_record;
using mmfuse::test::StoreTempDir;
using mmfuse::test::touch_file;
using StoreRetentionP = mmfuse::test::StoreBackendTest;

namespace {

// SQLite checks foreign keys only when asked; PostgreSQL enforces them on every write.
std::string foreign_key_problems(const store::Store& store) {
  if (std::string(store.backend_kind()) != "sqlite") return "";
  const fs::path db = store.db_path();
  sqlite3* h = nullptr;
  sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(h, "PRAGMA foreign_key_check", -1, &s, nullptr);
  std::string out;
  while (s && sqlite3_step(s) == SQLITE_ROW)
    out += std::string(reinterpret_cast<const char*>(sqlite3_column_text(s, 0))) + " ";
  sqlite3_finalize(s);
  sqlite3_close(h);
  return out;
}

void set_mtime_ms(const fs::path& p, int64_t ms) {
  struct timespec times[2];
  times[0].tv_sec = times[1].tv_sec = static_cast<time_t>(ms / 1000);
  times[0].tv_nsec = times[1].tv_nsec = static_cast<long>(ms % 1000) * 1000000;
  ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), times, 0), 0);
}

}  // namespace

TEST_P(StoreRetentionP, PrunesOldRowsAndEvidenceKeepsRecentAndReferenced) {
  store::FakeClock clock;
  store::StoreOptions opt;
  opt.clock = &clock;
  opt.sinks = {"webhook"};
  opt.alarm_payload = alarm::alarm_payload;
  opt.dedupe_cooldown_ms = 0;
  auto s = open(opt);
  const fs::path ev = s->evidence_dir();
  const int64_t t0 = clock.now_ms();

  // Day 0: A (alarm acknowledged and delivered), B (alarm never acknowledged),
  // C (acknowledged, but its webhook row never delivered), N (normal, with readings
  // and a golden image outside evidence/ that must never be deleted).
  touch_file(ev / "r0/a.png");
  touch_file(ev / "r0/b.png");
  touch_file(ev / "r0/c.png");
  touch_file(temp() / "data" / "golden.png");
  auto a = s->record_inspection(make_record("A", true, "", {"evidence/r0/a.png"}));
  auto b = s->record_inspection(make_record("B", true, "", {(ev / "r0/b.png").string()}));
  auto c = s->record_inspection(make_record("C", true, "", {"evidence/r0/c.png"}));
  auto n = s->record_inspection(make_record("N", false, "", {(temp() / "data" / "golden.png").string()}),
                                make_readings("N", 4, t0));
  s->record_readings(make_readings("S", 3, t0));  // a stream outside inspections
  auto round = s->begin_round(0);
  s->finish_round(round.id);
  s->acknowledge_alarm(a.alarm_id, "op");
  s->acknowledge_alarm(c.alarm_id, "op");
  for (const auto& row : s->pending_outbox("webhook"))
    if (row.alarm_id != c.alarm_id) s->mark_delivered(row.id, clock.now_ms());

  // Day 6: R (recent) with its own evidence.
  clock.advance_ms(6 * store::kMsPerDay);
  touch_file(ev / "r6/r.png");
  auto r = s->record_inspection(make_record("R", true, "", {"evidence/r6/r.png"}),
                                make_readings("R", 2, clock.now_ms()));
  // Orphans: one old (a crash between commit and delete), one fresh (being written).
  touch_file(ev / "orphan/old.png");
  set_mtime_ms(ev / "orphan/old.png", t0 - store::kMsPerDay);
  touch_file(ev / "orphan/new.png");

  // Day 8: everything from day 0 is past the 7-day retention.
  clock.advance_ms(2 * store::kMsPerDay);
  auto rep = s->prune();
  EXPECT_EQ(rep.cutoff_ms, clock.now_ms() - 7 * store::kMsPerDay);
  EXPECT_EQ(rep.inspections, 4);
  EXPECT_EQ(rep.alarms, 1);    // A only: B is unacknowledged, C still owes a delivery
  EXPECT_EQ(rep.readings, 7);  // N's 4 and the stream's 3
  EXPECT_EQ(rep.rounds, 1);
  EXPECT_FALSE(s->find_inspection(a.inspection_id));
  EXPECT_FALSE(s->find_inspection(n.inspection_id));
  EXPECT_TRUE(s->find_inspection(r.inspection_id));
  EXPECT_FALSE(s->find_alarm(a.alarm_id));
  ASSERT_TRUE(s->find_alarm(b.alarm_id));
  EXPECT_EQ(s->find_alarm(b.alarm_id)->inspection_id, 0);  // its inspection is gone
  EXPECT_TRUE(s->find_alarm(c.alarm_id));
  EXPECT_EQ(s->list_outbox().size(), 2u);  // C's pending row and R's

  EXPECT_FALSE(fs::exists(ev / "r0/a.png"));
  EXPECT_TRUE(fs::exists(ev / "r0/b.png"));  // named by the open alarm B
  EXPECT_TRUE(fs::exists(ev / "r0/c.png"));
  EXPECT_TRUE(fs::exists(ev / "r6/r.png"));
  EXPECT_TRUE(fs::exists(temp() / "data" / "golden.png"));  // outside evidence/: never deleted
  EXPECT_FALSE(fs::exists(ev / "orphan/old.png"));
  EXPECT_TRUE(fs::exists(ev / "orphan/new.png"));
  EXPECT_EQ(rep.files, 2);  // a.png and the old orphan
  EXPECT_GE(rep.files_kept, 0);
  EXPECT_EQ(s->sensor_trend("N", "temperature", 0, 0).size(), 0u);
  EXPECT_EQ(s->sensor_trend("R", "temperature", 0, 0).size(), 2u);
  EXPECT_EQ(s->integrity_check(), "ok");
  EXPECT_EQ(foreign_key_problems(*s), "");

  // Pruning again changes nothing.
  auto again = s->prune();
  EXPECT_EQ(again.inspections + again.alarms + again.readings + again.files, 0);

  // Day 31: the unacknowledged alarm ages out too (30 days), with its file; C stays
  // until its delivery happens.
  clock.advance_ms(23 * store::kMsPerDay);
  auto late = s->prune();
  EXPECT_FALSE(s->find_alarm(b.alarm_id));
  EXPECT_FALSE(fs::exists(ev / "r0/b.png"));
  EXPECT_TRUE(s->find_alarm(c.alarm_id));
  EXPECT_TRUE(fs::exists(ev / "r0/c.png"));
  EXPECT_FALSE(s->find_inspection(r.inspection_id));
  EXPECT_TRUE(fs::exists(ev / "r6/r.png"));  // R's alarm (day 6) is still open
  EXPECT_TRUE(s->find_alarm(r.alarm_id));
  for (const auto& row : s->pending_outbox("webhook")) s->mark_delivered(row.id, clock.now_ms());
  clock.advance_ms(8 * store::kMsPerDay);
  s->prune();
  EXPECT_FALSE(s->find_alarm(c.alarm_id));
  EXPECT_FALSE(fs::exists(ev / "r0/c.png"));
  EXPECT_EQ(s->list_outbox().size(), 0u);
  EXPECT_EQ(foreign_key_problems(*s), "");
  (void)late;
}

TEST_P(StoreRetentionP, ConfigurableDaysAndSharedEvidenceIsKept) {
  store::FakeClock clock;
  store::StoreOptions opt;
  opt.clock = &clock;
  opt.retention_days = 2;
  auto s = open(opt);
  const fs::path ev = s->evidence_dir();
  touch_file(ev / "shared.png");
  auto old = s->record_inspection(make_record("A", false, "", {"evidence/shared.png"}));
  clock.advance_ms(2 * store::kMsPerDay);
  // A newer inspection names the same file: pruning the old one must keep it.
  auto fresh = s->record_inspection(make_record("A", false, "", {"evidence/shared.png"}));
  clock.advance_ms(store::kMsPerDay / 2);
  auto rep = s->prune();
  EXPECT_EQ(rep.inspections, 1);
  EXPECT_EQ(rep.files_kept, 1);
  EXPECT_FALSE(s->find_inspection(old.inspection_id));
  EXPECT_TRUE(s->find_inspection(fresh.inspection_id));
  EXPECT_TRUE(fs::exists(ev / "shared.png"));
  // An explicit day count overrides the option.
  clock.advance_ms(store::kMsPerDay);
  EXPECT_EQ(s->prune(30).inspections, 0);
  EXPECT_EQ(s->prune(1).inspections, 1);
  EXPECT_FALSE(fs::exists(ev / "shared.png"));
}

std::string evidence_name(int i) {
  std::string name = "evidence/e";
  name += std::to_string(i);
  name += ".png";
  return name;
}

TEST_P(StoreRetentionP, PrunesManyInspectionsInChunks) {
  store::FakeClock clock;
  store::StoreOptions opt;
  opt.clock = &clock;
  opt.synchronous_full = false;  // speed: this test is about chunking, not durability
  auto s = open(opt);
  constexpr int kOld = 700, kNew = 5;  // more than two prune chunks (256)
  for (int i = 0; i < kOld + kNew; ++i) {
    if (i == kOld) clock.advance_ms(8 * store::kMsPerDay);
    const std::string rel = evidence_name(i);
    touch_file(temp() / "data" / rel);
    s->record_inspection(make_record(i % 2 ? "d1" : "d2", false, "", {rel}),
                         mmfuse::test::make_readings("d0", 3, clock.now_ms()));
  }
  auto rep = s->prune();
  EXPECT_EQ(rep.inspections, kOld);
  EXPECT_EQ(rep.readings, 3 * kOld);
  EXPECT_EQ(rep.files, kOld);
  EXPECT_EQ(s->list_inspections({"", "", 0, 0, 10000}).size(), static_cast<size_t>(kNew));
  EXPECT_TRUE(fs::exists(temp() / "data" / evidence_name(kOld)));
  EXPECT_FALSE(fs::exists(temp() / "data" / "evidence/e0.png"));
  EXPECT_EQ(s->sensor_trend("d0", "temperature", 0, 0).size(), 3u * kNew);
  EXPECT_EQ(foreign_key_problems(*s), "");
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreRetentionP,
                         ::testing::Values(mmfuse::test::StoreBackend::sqlite,
                                           mmfuse::test::StoreBackend::postgres),
                         mmfuse::test::backend_name);
