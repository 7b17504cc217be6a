// Retention: Store::prune deletes old rows in one transaction, then the evidence files
// no remaining row names, then sweeps unreferenced old files (see store.h, docs/store.md).
#include <sys/stat.h>

#include <set>

#include "mmfuse/error.h"
#include "store/backend.h"
#include "store/sql_connection.h"
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


}  // namespace

PruneReport Store::prune(int days) {
  if (days <= 0) days = options_.retention_days;
  PruneReport rep;
  const int64_t now = clock_->now_ms();
  rep.cutoff_ms = now - static_cast<int64_t>(days) * kMsPerDay;
  const int64_t unacked_cutoff =
      now - static_cast<int64_t>(std::max(days, options_.unacked_alarm_retention_days)) * kMsPerDay;
  const fs::path evidence_root = evidence_dir();

  // Work goes in bounded chunks, each its own transaction under the write mutex, so a
  // week of rows never blocks record_inspection for long. Every chunk deletes rows,
  // commits, then deletes the files that no remaining row names, before releasing the
  // mutex (no new row can name a file between the check and the delete).
  constexpr int kChunk = 256;
  // One kind of row, oldest first, chunk by chunk until none is left: pick the ids
  // (?1 cutoff, ?2 unacknowledged-alarm cutoff, ?3 chunk size), note the evidence paths
  // they name (when `ref_column` is set) and count the rows deleted with them (when
  // `cascaded_sql` is set), delete, commit, then delete the files no row names.
  struct Step {
    const char* pick_sql;      // INSERT INTO prune_ids SELECT id ...
    const char* ref_column;    // evidence_refs column that names the owner, or nullptr
    const char* cascaded_sql;  // count(*) of rows the delete cascades to, or nullptr
    const char* delete_sql;    // DELETE ... WHERE id IN (SELECT id FROM prune_ids)
    int chunk;
    int64_t* deleted;
    int64_t* cascaded;
  };
  // Session-local scratch tables (SQLite: the temp schema; PostgreSQL: pg_temp),
  // unqualified names in portable SQL.
  auto scratch = [&] {
    writer_->exec(
        "CREATE TEMP TABLE IF NOT EXISTS prune_ids(id BIGINT PRIMARY KEY);"
        "CREATE TEMP TABLE IF NOT EXISTS prune_paths(path TEXT PRIMARY KEY);"
        "DELETE FROM prune_ids; DELETE FROM prune_paths;");
  };
  auto prune_rows = [&](const Step& step) {
    for (;;) {
      std::lock_guard<std::mutex> lock(write_mutex_);
      Transaction tx(*writer_, true);
      scratch();
      const int64_t picked = Stmt(*writer_, step.pick_sql)
                                 .bind(1, rep.cutoff_ms)
                                 .bind(2, unacked_cutoff)
                                 .bind(3, static_cast<int64_t>(step.chunk))
                                 .run();
      if (picked == 0) break;  // the guard rolls back the empty chunk
      if (step.ref_column)
        writer_->exec(std::string("INSERT INTO prune_paths SELECT DISTINCT path FROM "
                                  "evidence_refs WHERE ") +
                      step.ref_column + " IN (SELECT id FROM prune_ids) ON CONFLICT DO NOTHING");
      if (step.cascaded_sql) *step.cascaded += sql_scalar(*writer_, step.cascaded_sql);
      *step.deleted += Stmt(*writer_, step.delete_sql).run();
      std::vector<std::string> unreferenced;
      if (step.ref_column) {
        Stmt left(*writer_,
                  "SELECT path FROM prune_paths p WHERE NOT EXISTS "
                  "(SELECT 1 FROM evidence_refs r WHERE r.path = p.path)");
        while (left.step()) unreferenced.push_back(left.text(0));
        rep.files_kept += sql_scalar(*writer_,
                                     "SELECT count(*) FROM prune_paths p WHERE EXISTS "
                                     "(SELECT 1 FROM evidence_refs r WHERE r.path = p.path)");
      }
      tx.commit();
      // Files after the commit: a crash in between leaves files no row names (swept
      // below, now or on the next prune), never a row naming a missing file. Only files
      // under evidence/ are ever deleted (a record may name a golden image elsewhere).
      for (const auto& path : unreferenced) {
        std::error_code ec;
        if (!evidence_root.empty() && inside(fs::path(path), evidence_root) &&
            fs::remove(fs::path(path), ec))
          ++rep.files;
      }
    }
  };

  // 1. Inspections, oldest first (cascades: modality rows, readings, evidence refs).
  prune_rows(
      {"INSERT INTO prune_ids SELECT id FROM inspections WHERE created_ms < ?1 AND NOT EXISTS "
       "(SELECT 1 FROM forward_marks f WHERE f.rev < inspections.rev) ORDER BY id LIMIT ?3",
       "inspection_id",
       "SELECT count(*) FROM sensor_readings WHERE inspection_id IN "
       "(SELECT id FROM prune_ids)",
       "DELETE FROM inspections WHERE id IN (SELECT id FROM prune_ids)", kChunk,
       &rep.inspections, &rep.readings});

  // 2. Alarms: acknowledged ones age out with the rest, unacknowledged ones later, and
  // one with an undelivered outbox row stays whatever its age (the outbox promise).
  // On an edge (steps 1, 2 and the rounds) a row not yet forwarded to every centre in
  // forward_marks stays too (docs/scale-out.md, "Edge to centre").
  prune_rows(
      {"INSERT INTO prune_ids SELECT id FROM alarms a WHERE "
       "((a.acknowledged_at_ms IS NOT NULL AND a.last_seen_ms < ?1) OR a.last_seen_ms < ?2) AND "
       "NOT EXISTS (SELECT 1 FROM outbox o WHERE o.alarm_id = a.id AND o.delivered_at_ms IS NULL) "
       "AND NOT EXISTS (SELECT 1 FROM forward_marks f WHERE f.rev < a.rev) ORDER BY id LIMIT ?3",
       "alarm_id", "SELECT count(*) FROM outbox WHERE alarm_id IN (SELECT id FROM prune_ids)",
       "DELETE FROM alarms WHERE id IN (SELECT id FROM prune_ids)", kChunk, &rep.alarms,
       &rep.outbox});

  // 3. Free readings (chunked), then the small tables in one transaction.
  prune_rows(
      {"INSERT INTO prune_ids SELECT id FROM sensor_readings WHERE "
       "inspection_id IS NULL AND t_ms < ?1 LIMIT ?3",
       nullptr, nullptr, "DELETE FROM sensor_readings WHERE id IN (SELECT id FROM prune_ids)",
       kChunk * 64, &rep.readings, nullptr});
  {
    std::lock_guard<std::mutex> lock(write_mutex_);
    Transaction tx(*writer_, true);
    writer_->exec(
        "DELETE FROM sensor_series WHERE NOT EXISTS "
        "(SELECT 1 FROM sensor_readings r WHERE r.series_id = sensor_series.id)");
    rep.outbox += Stmt(*writer_,
                       "DELETE FROM outbox WHERE delivered_at_ms IS NOT NULL AND "
                       "delivered_at_ms < ?")
                      .bind(1, rep.cutoff_ms)
                      .run();
    rep.rounds = Stmt(*writer_,
                      "DELETE FROM rounds WHERE status != 'running' AND started_ms < ?1 AND "
                      "NOT EXISTS (SELECT 1 FROM inspections i WHERE i.round_id = rounds.id) AND "
                      "NOT EXISTS (SELECT 1 FROM forward_marks f WHERE f.rev < rounds.rev)")
                     .bind(1, rep.cutoff_ms)
                     .run();
    tx.commit();
  }

  // 4. Sweep: old files under evidence/ that no row names (left by a crash between a
  // commit and its file deletes, or written by a pipeline that died before recording).
  // The walk runs without the mutex; each batch is checked and deleted under it.
  std::vector<fs::path> dirs, batch;
  auto sweep_batch = [&]() {
    std::lock_guard<std::mutex> lock(write_mutex_);
    Stmt ref(*writer_, "SELECT 1 FROM evidence_refs WHERE path = ? LIMIT 1");
    for (const auto& path : batch) {
      ref.reset();
      ref.bind(1, path.string());
      std::error_code e2;
      if (!ref.step() && fs::remove(path, e2)) ++rep.files;
    }
    batch.clear();
  };
  std::error_code ec;
  if (evidence_root.empty()) return rep;  // a PostgreSQL store without a data folder
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
    batch.push_back(path);
    if (batch.size() >= static_cast<size_t>(kChunk)) sweep_batch();
  }
  if (!batch.empty()) sweep_batch();
  // Empty folders that are old too (a new one may be about to receive a file).
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    std::error_code e2;
    if (mtime_ms(*it) < rep.cutoff_ms && fs::is_empty(*it, e2)) fs::remove(*it, e2);
  }
  return rep;
}

}  // namespace mmfuse::store
