// Work shared by several processes on one store: the devices of a round claimed by
// workers under leases, and the outbox sinks' dispatch leases (see store.h and
// docs/scale-out.md). Portable SQL; the only dialect piece is the back-end's
// skip_locked() suffix.
#include <algorithm>

#include "mmfuse/error.h"
#include "store/backend.h"
#include "store/sql_connection.h"
#include "store/store.h"
#include "store/store_reader.h"
#include "store/sync_rev.h"

namespace mmfuse::store {

RoundInfo Store::join_round(int64_t total, const std::vector<std::string>& devices,
                            const std::string& new_id, bool* joined) {
  MMFUSE_CHECK(total >= 0, bad_input, "store: a round's total must be >= 0");
  std::string id;
  bool existed = false;
  {
    std::lock_guard<std::mutex> lock(write_mutex_);
    Transaction tx(*writer_, true);
    // Workers starting together: the first creates the round, the others wait on the
    // lock and then find it running.
    backend_->lock_key(*writer_, "mmfuse:join_round");
    Stmt running(*writer_,
                 "SELECT id FROM rounds WHERE status = 'running' AND edge_id = '' "
                 "ORDER BY started_ms DESC, rowid DESC LIMIT 1");
    if (running.step()) {
      id = running.text(0);
      existed = true;
    } else {
      const int64_t now = clock_->now_ms();
      id = new_id;
      if (id.empty()) {
        std::string base = "round-";
        for (char c : iso8601_utc(now).substr(0, 19))
          if (c != '-' && c != ':') base.push_back(c);
        id = base + "Z";
      }
      Stmt ins(*writer_,
               "INSERT INTO rounds(id, started_ms, finished_ms, status, total, position, rev) "
               "VALUES(?, ?, 0, 'running', ?, 0, ?)");
      ins.bind(1, id).bind(2, now).bind(3, total).bind(4, next_rev(*writer_)).run();
    }
    // Claims for the round's devices (a round begun by begin_round has none yet).
    Stmt have(*writer_, "SELECT count(*) FROM round_claims WHERE round_id = ?");
    have.bind(1, id);
    have.step();
    if (have.i64(0) == 0) {
      Stmt add(*writer_,
               "INSERT INTO round_claims(round_id, device_id, seq) VALUES(?,?,?) "
               "ON CONFLICT DO NOTHING");
      for (size_t i = 0; i < devices.size(); ++i) {
        add.reset();
        add.bind(1, id).bind(2, devices[i]).bind(3, static_cast<int64_t>(i)).run();
      }
    }
    tx.commit();
  }
  if (joined) *joined = existed;
  return round_progress(id);
}

std::vector<std::string> Store::claim_devices(const std::string& round_id,
                                              const std::string& worker, int limit,
                                              int64_t lease_ms) {
  MMFUSE_CHECK(!worker.empty() && limit > 0 && lease_ms > 0, bad_input,
               "store: claim_devices needs a worker name, limit > 0 and lease_ms > 0");
  std::lock_guard<std::mutex> lock(write_mutex_);
  Transaction tx(*writer_, true);
  const int64_t now = clock_->now_ms();
  // The queue pattern: pick (and, on PostgreSQL, lock, skipping rows other claimers
  // hold) in a CTE evaluated once, then update exactly those rows.
  Stmt s(*writer_,
         std::string("WITH picked AS (SELECT device_id AS pick FROM round_claims WHERE "
                     "round_id = ?3 AND done = 0 AND lease_until_ms <= ?4 ORDER BY seq LIMIT ?5") +
             backend_->skip_locked() +
             ") UPDATE round_claims SET worker = ?1, lease_until_ms = ?2, claims = claims + 1 "
             "FROM picked WHERE round_claims.round_id = ?3 AND round_claims.device_id = "
             "picked.pick RETURNING seq, device_id");
  s.bind(1, worker).bind(2, now + lease_ms).bind(3, round_id).bind(4, now);
  s.bind(5, static_cast<int64_t>(limit));
  std::vector<std::pair<int64_t, std::string>> got;
  while (s.step()) got.emplace_back(s.i64(0), s.text(1));
  tx.commit();
  std::sort(got.begin(), got.end());
  std::vector<std::string> out;
  for (auto& [seq, device] : got) out.push_back(std::move(device));
  return out;
}

void Store::complete_device(const std::string& round_id, const std::string& device_id,
                            const std::string& worker, int64_t lease_ms) {
  std::lock_guard<std::mutex> lock(write_mutex_);
  Transaction tx(*writer_, true);
  Stmt(*writer_, "UPDATE round_claims SET done = 1 WHERE round_id = ? AND device_id = ?")
      .bind(1, round_id)
      .bind(2, device_id)
      .run();
  Stmt(*writer_,
       "UPDATE round_claims SET lease_until_ms = ? WHERE round_id = ? AND worker = ? AND done = 0")
      .bind(1, clock_->now_ms() + lease_ms)
      .bind(2, round_id)
      .bind(3, worker)
      .run();
  tx.commit();
}

int64_t Store::release_claims(const std::string& round_id, const std::string& worker) {
  std::lock_guard<std::mutex> lock(write_mutex_);
  Transaction tx(*writer_, true);
  const int64_t n = Stmt(*writer_,
                         "UPDATE round_claims SET lease_until_ms = 0 WHERE round_id = ? AND "
                         "worker = ? AND done = 0")
                        .bind(1, round_id)
                        .bind(2, worker)
                        .run();
  tx.commit();
  return n;
}

int64_t Store::open_devices(const std::string& round_id) const {
  auto r = reader();
  Stmt s(r.db(), "SELECT count(*) FROM round_claims WHERE round_id = ? AND done = 0");
  s.bind(1, round_id);
  return s.step() ? s.i64(0) : 0;
}

bool Store::finish_round_when_done(const std::string& round_id) {
  std::lock_guard<std::mutex> lock(write_mutex_);
  Transaction tx(*writer_, true);
  Stmt open(*writer_, "SELECT count(*) FROM round_claims WHERE round_id = ? AND done = 0");
  open.bind(1, round_id);
  open.step();
  if (open.i64(0) > 0) return false;
  // The change counter before the round's row, the order record_inspection takes them
  // in (PostgreSQL: the other order could deadlock with a worker recording).
  const int64_t rev = next_rev(*writer_);
  Stmt(*writer_,
       "UPDATE rounds SET status = 'finished', finished_ms = ?, rev = ? WHERE id = ? AND "
       "status = 'running'")
      .bind(1, clock_->now_ms())
      .bind(2, rev)
      .bind(3, round_id)
      .run();
  Stmt status(*writer_, "SELECT status FROM rounds WHERE id = ?");
  status.bind(1, round_id);
  const bool finished = status.step() && status.text(0) != "running";
  tx.commit();
  return finished;
}

bool Store::acquire_sink_lease(const std::string& sink, const std::string& holder,
                               int64_t lease_ms) {
  return acquire_lease(sink, holder, lease_ms);
}

void Store::release_sink_lease(const std::string& sink, const std::string& holder) {
  release_lease(sink, holder);
}

bool Store::acquire_lease(const std::string& name, const std::string& holder, int64_t lease_ms,
                          std::pair<std::string, int64_t>* current) {
  MMFUSE_CHECK(!name.empty() && !holder.empty() && lease_ms > 0, bad_input,
               "store: a lease needs a name, a holder and lease_ms > 0");
  std::lock_guard<std::mutex> lock(write_mutex_);
  Transaction tx(*writer_, true);
  const int64_t now = clock_->now_ms();
  Stmt s(*writer_,
         "INSERT INTO sink_leases(sink, holder, lease_until_ms) VALUES(?1, ?2, ?3) "
         "ON CONFLICT(sink) DO UPDATE SET holder = excluded.holder, "
         "lease_until_ms = excluded.lease_until_ms "
         "WHERE sink_leases.holder = excluded.holder OR sink_leases.lease_until_ms <= ?4 "
         "RETURNING holder");
  s.bind(1, name).bind(2, holder).bind(3, now + lease_ms).bind(4, now);
  const bool held = s.step();
  while (s.step()) {
  }
  if (!held && current) {
    Stmt who(*writer_, "SELECT holder, lease_until_ms FROM sink_leases WHERE sink = ?");
    who.bind(1, name);
    if (who.step()) *current = {who.text(0), who.i64(1)};
  }
  tx.commit();
  return held;
}

void Store::release_lease(const std::string& name, const std::string& holder) {
  std::lock_guard<std::mutex> lock(write_mutex_);
  Transaction tx(*writer_, true);
  Stmt(*writer_, "UPDATE sink_leases SET lease_until_ms = 0 WHERE sink = ? AND holder = ?")
      .bind(1, name)
      .bind(2, holder)
      .run();
  tx.commit();
}

}  // namespace mmfuse::store
