// kill -9 test: a child process records inspections (with readings, alarms, outbox
// rows and evidence references) in a loop and is killed at random moments, several
// times over one data directory. After each kill the store must open, pass
// integrity_check, hold every inspection the child saw committed, and hold only
// complete inspections (all modality and reading rows, alarm and outbox rows) with
// no orphan rows.
#include <sqlite3.h>

#include <random>
#include <set>

#include "alarm/alarm_payload.h"
#include "test_store_util.h"

namespace fs = std::filesystem;
using namespace mmfuse;
using mmfuse::test::make_readings;
using mmfuse::test::make_record;
using mmfuse::test::StoreTempDir;

namespace {

constexpr int kReadings = 20;

// The child: records forever, reporting each committed inspection id on `fd`.
[[noreturn]] void writer_child(const fs::path& dir, int fd) {
  try {
    store::StoreOptions opt;
    opt.sinks = {"mqtt", "webhook"};
    opt.alarm_payload = alarm::alarm_payload;
    opt.dedupe_cooldown_ms = 0;
    auto s = store::Store::open(dir, opt);
    auto round = s->begin_round(1'000'000);
    for (int64_t i = 0;; ++i) {
      const std::string device = "dev-" + std::to_string(i % 7);
      auto rec = make_record(device, i % 2 == 0, round.id,
                             {"evidence/" + device + "/" + std::to_string(i) + ".png"});
      const int64_t id = s->record_inspection(rec, make_readings(device, kReadings)).inspection_id;
      if (::write(fd, &id, sizeof id) != static_cast<ssize_t>(sizeof id)) ::_exit(4);
    }
  } catch (...) {
    ::_exit(3);
  }
}

int64_t scalar(sqlite3* db, const char* sql) {
  sqlite3_stmt* s = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &s, nullptr), SQLITE_OK) << sql;
  int64_t v = -1;
  if (s && sqlite3_step(s) == SQLITE_ROW) v = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  return v;
}

}  // namespace

TEST(StoreCrash, KillNineAtRandomPointsLosesNothingCommittedAndLeavesNoHalfInspection) {
  StoreTempDir dir;
  std::mt19937 rng(20261129);
  std::set<int64_t> committed;
  int64_t total_kills = 0;
  for (int round = 0; round < 10; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      writer_child(dir.path(), fds[1]);
    }
    ::close(fds[1]);
    if (round > 0) {
      // Wait for the first commit, then let it run a random while (mid-transaction
      // kills are the common case: a commit takes ~1 fsync).
      int64_t id = 0;
      ASSERT_EQ(::read(fds[0], &id, sizeof id), static_cast<ssize_t>(sizeof id));
      committed.insert(id);
    }
    std::uniform_int_distribution<int> pause_ms(round == 0 ? 0 : 5, round == 0 ? 15 : 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms(rng)));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited by itself, status " << status;
    ++total_kills;
    int64_t id = 0;
    while (::read(fds[0], &id, sizeof id) == static_cast<ssize_t>(sizeof id)) committed.insert(id);
    ::close(fds[0]);

    // Recovery: open (replays the WAL), then check the invariants on a raw connection.
    auto s = store::Store::open(dir.path());
    ASSERT_EQ(s->integrity_check(), "ok") << "after kill " << round;
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open_v2(s->db_path().c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    EXPECT_EQ(scalar(db, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    EXPECT_EQ(
        scalar(db,
               "SELECT count(*) FROM inspections i WHERE modality_count != (SELECT count(*) "
               "FROM inspection_modalities m WHERE m.inspection_id = i.id) OR modality_count != 4"),
        0);
    EXPECT_EQ(scalar(db,
                     "SELECT count(*) FROM inspections i WHERE reading_count != (SELECT count(*) "
                     "FROM sensor_readings r WHERE r.inspection_id = i.id)"),
              0);
    EXPECT_EQ(scalar(db,
                     "SELECT count(*) FROM inspections i WHERE 1 != (SELECT count(*) FROM "
                     "evidence_refs e WHERE e.inspection_id = i.id)"),
              0);
    // Every alarm inspection has its alarm, every alarm its evidence and both outbox rows.
    EXPECT_EQ(scalar(db,
                     "SELECT count(*) FROM inspections i WHERE alarm = 1 AND NOT EXISTS "
                     "(SELECT 1 FROM alarms a WHERE a.id = i.alarm_id AND a.inspection_id = i.id)"),
              0);
    EXPECT_EQ(scalar(db,
                     "SELECT count(*) FROM alarms a WHERE 2 != (SELECT count(*) FROM outbox o "
                     "WHERE o.alarm_id = a.id) OR 1 != (SELECT count(*) FROM evidence_refs e "
                     "WHERE e.alarm_id = a.id)"),
              0);
    EXPECT_EQ(scalar(db, "SELECT count(*) FROM alarms"),
              scalar(db, "SELECT count(*) FROM inspections WHERE alarm = 1"));
    // Each round's position counts exactly its recorded inspections.
    EXPECT_EQ(scalar(db,
                     "SELECT count(*) FROM rounds r WHERE position != (SELECT count(*) FROM "
                     "inspections i WHERE i.round_id = r.id)"),
              0);
    // Nothing the child saw committed is missing.
    std::set<int64_t> present;
    {
      sqlite3_stmt* st = nullptr;
      sqlite3_prepare_v2(db, "SELECT id FROM inspections", -1, &st, nullptr);
      while (sqlite3_step(st) == SQLITE_ROW) present.insert(sqlite3_column_int64(st, 0));
      sqlite3_finalize(st);
    }
    for (int64_t c : committed)
      ASSERT_TRUE(present.count(c)) << "committed inspection " << c << " lost";
    sqlite3_close(db);
  }
  EXPECT_EQ(total_kills, 10);
  EXPECT_GT(committed.size(), 5u) << "the child hardly ever committed";
  std::printf("kill -9 test: %zu committed inspections verified over %lld kills\n",
              committed.size(), static_cast<long long>(total_kills));
}
