// Retention: Store::prune deletes old rows in one transaction, then the evidence files
// no remaining row names, then sweeps unreferenced old files (see store.h, docs/store.md).
#include <sys/stat.h>

#include <set>

#include "mmfuse/error.h"
#include "store/sqlite_util.h"
#include "store/store.h"

namespace fs = std::filesystem;

namespace mmfuse::store {

namespace {

// True when `p` (absolute, lexically normal) lies strictly inside `dir`.
bool inside(const fs::path& p, const fs::path& dir) {
  auto rel = p.lexically_relative(dir);
  return !rel.empty() && *rel.begin() != ".." && rel != ".";
}

int64_t mtime_ms(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
}

int64_t count(sqlite3* db, const char* sql) {
  Stmt s(db, sql);
  return s.step() ? s.i64(0) : 0;
}

}  // namespace

PruneReport Store::prune(int days) {
  if (days <= 0) days = options_.retention_days;
  PruneReport rep;
  std::lock_guard<std::mutex> lock(write_mutex_);  // no new evidence rows while files go
  const int64_t now = clock_->now_ms();
  rep.cutoff_ms = now - static_cast<int64_t>(days) * kMsPerDay;
  const int64_t unacked_cutoff =
      now - static_cast<int64_t>(std::max(days, options_.unacked_alarm_retention_days)) * kMsPerDay;
  const fs::path evidence_root = evidence_dir();

  std::vector<std::string> unreferenced;
  {
    Transaction tx(writer_, true);
    sql_exec(writer_,
             "CREATE TEMP TABLE IF NOT EXISTS prune_inspections(id INTEGER PRIMARY KEY);"
             "CREATE TEMP TABLE IF NOT EXISTS prune_alarms(id INTEGER PRIMARY KEY);"
             "CREATE TEMP TABLE IF NOT EXISTS prune_paths(path TEXT PRIMARY KEY);"
             "DELETE FROM temp.prune_inspections; DELETE FROM temp.prune_alarms;"
             "DELETE FROM temp.prune_paths;");
    Stmt(writer_,
         "INSERT INTO temp.prune_inspections SELECT id FROM inspections WHERE created_ms < ?")
        .bind(1, rep.cutoff_ms)
        .run();
    // Acknowledged alarms age out with the rest; unacknowledged ones later. An alarm
    // with an undelivered outbox row stays whatever its age (the outbox promise).
    Stmt(
        writer_,
        "INSERT INTO temp.prune_alarms SELECT id FROM alarms a WHERE "
        "((a.acknowledged_at_ms IS NOT NULL AND a.last_seen_ms < ?1) OR a.last_seen_ms < ?2) AND "
        "NOT EXISTS (SELECT 1 FROM outbox o WHERE o.alarm_id = a.id AND o.delivered_at_ms IS NULL)")
        .bind(1, rep.cutoff_ms)
        .bind(2, unacked_cutoff)
        .run();
    sql_exec(writer_,
             "INSERT OR IGNORE INTO temp.prune_paths SELECT path FROM evidence_refs WHERE "
             "inspection_id IN (SELECT id FROM temp.prune_inspections) OR "
             "alarm_id IN (SELECT id FROM temp.prune_alarms)");
    rep.readings = count(writer_,
                         "SELECT count(*) FROM sensor_readings WHERE inspection_id IN "
                         "(SELECT id FROM temp.prune_inspections)");
    rep.outbox =
        count(writer_,
              "SELECT count(*) FROM outbox WHERE alarm_id IN (SELECT id FROM temp.prune_alarms)");
    // Cascades remove modality rows, readings, evidence refs and (delivered) outbox rows.
    sql_exec(writer_, "DELETE FROM alarms WHERE id IN (SELECT id FROM temp.prune_alarms)");
    rep.alarms = sqlite3_changes(writer_);
    sql_exec(writer_,
             "DELETE FROM inspections WHERE id IN (SELECT id FROM temp.prune_inspections)");
    rep.inspections = sqlite3_changes(writer_);
    Stmt(writer_, "DELETE FROM sensor_readings WHERE inspection_id IS NULL AND t_ms < ?")
        .bind(1, rep.cutoff_ms)
        .run();
    rep.readings += sqlite3_changes(writer_);
    Stmt(writer_, "DELETE FROM outbox WHERE delivered_at_ms IS NOT NULL AND delivered_at_ms < ?")
        .bind(1, rep.cutoff_ms)
        .run();
    rep.outbox += sqlite3_changes(writer_);
    Stmt(writer_,
         "DELETE FROM rounds WHERE status != 'running' AND started_ms < ?1 AND "
         "NOT EXISTS (SELECT 1 FROM inspections i WHERE i.round_id = rounds.id)")
        .bind(1, rep.cutoff_ms)
        .run();
    rep.rounds = sqlite3_changes(writer_);
    Stmt left(writer_,
              "SELECT path FROM temp.prune_paths p WHERE NOT EXISTS "
              "(SELECT 1 FROM evidence_refs r WHERE r.path = p.path)");
    while (left.step()) unreferenced.push_back(left.text(0));
    Stmt kept(writer_,
              "SELECT count(*) FROM temp.prune_paths p WHERE EXISTS "
              "(SELECT 1 FROM evidence_refs r WHERE r.path = p.path)");
    rep.files_kept = kept.step() ? kept.i64(0) : 0;
    tx.commit();
  }

  // Files after the commit: a crash here leaves files no row names (swept below on
  // the next prune), never a row naming a missing file. Only files under evidence/
  // are ever deleted (a record may name a golden image elsewhere).
  for (const auto& p : unreferenced) {
    const fs::path path(p);
    std::error_code ec;
    if (inside(path, evidence_root) && fs::remove(path, ec)) ++rep.files;
  }

  // Sweep: old files under evidence/ that no row names (left by a crash between the
  // commit and the deletes above, or written by a pipeline that died before recording).
  std::error_code ec;
  std::vector<fs::path> dirs;
  {
    Stmt ref(writer_, "SELECT 1 FROM evidence_refs WHERE path = ? LIMIT 1");
    for (auto it = fs::recursive_directory_iterator(
             evidence_root, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const fs::path path = it->path().lexically_normal();
      std::error_code e2;
      if (it->is_directory(e2)) {
        dirs.push_back(path);
        continue;
      }
      if (mtime_ms(path) >= rep.cutoff_ms) continue;
      ref.reset();
      ref.bind(1, path.string());
      if (ref.step()) continue;
      if (fs::remove(path, e2)) ++rep.files;
    }
  }
  // Empty folders that are old too (a new one may be about to receive a file).
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    std::error_code e2;
    if (mtime_ms(*it) < rep.cutoff_ms && fs::is_empty(*it, e2)) fs::remove(*it, e2);
  }
  return rep;
}

}  // namespace mmfuse::store
