// Edge -> centre forwarding: an edge box's store (SQLite, its own retention) sends its
// inspections (with modality rows, sensor readings, evidence references), alarms,
// rounds and devices to a central store (PostgreSQL) that keeps history longer.
//
// At least once, never duplicated: the edge stamps every change with a rev (a counter
// taken last in each write transaction, so revs commit in order). A batch is "the
// rows with rev in (from, to]", applied at the centre in ONE transaction that also
// records, per edge, `to` in edge_marks; rows there carry (edge_id, edge_row_id),
// unique, so a batch sent twice changes nothing the second time. The edge notes `to`
// in forward_marks after the centre's commit; a crash in between only resends. The
// next run starts from the centre's own mark. Retention on the edge never deletes a
// row newer than the lowest forward mark. See docs/scale-out.md, "Edge to centre".
//
// Thread-safety: the functions use the stores' own connections (Store is thread-safe);
// EdgeForwarder runs one background thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"

namespace mmfuse::store {

struct ForwardOptions {
  // Who this edge is at the centre (rows are keyed by it): default the name kept in the
  // edge's forward mark for this centre, else the host name. A different id than the
  // one kept is refused (it would duplicate the edge's history at the centre).
  std::string edge_id;
  int batch_inspections = 200;  // inspections per centre transaction
};

struct ForwardReport {
  std::string edge_id;
  std::string centre;       // where the rows went (no password)
  int64_t batches = 0;      // centre transactions committed
  int64_t inspections = 0;  // new at the centre (a resent one is not counted)
  int64_t alarms = 0;       // alarms sent (new or updated)
  int64_t rounds = 0;       // rounds sent (new or updated)
  int64_t devices = 0;      // devices sent
  int64_t from_rev = 0;     // the centre's mark for this edge before the run
  int64_t to_rev = 0;       // after it
};

// One forward target of an edge store (store info).
struct ForwardMark {
  std::string target;  // the centre URL without password
  std::string edge_id;
  int64_t rev = 0;        // forwarded up to here
  int64_t forwarded = 0;  // inspections forwarded so far
  int64_t pending_inspections = 0;
  int64_t pending_alarms = 0;  // alarms changed since the mark
  int64_t last_ok_ms = 0;
  int64_t last_attempt_ms = 0;
  std::string last_error;
};

// One edge forwarding into a centre (store info on the centre).
struct EdgeMark {
  std::string edge_id;
  int64_t rev = 0;         // received up to here
  int64_t updated_ms = 0;  // the last batch's commit
};

class EdgeSync {
 public:
  // The edge's mark for `target` (a centre URL; its password is not kept), created at
  // rev 0 when missing so retention keeps from now on what is not forwarded yet.
  // Returns the edge id in force (see ForwardOptions::edge_id).
  static std::string register_target(Store& edge, const std::string& target,
                                     const std::string& edge_id);
  // Forwards everything the centre has not got from this edge yet, batch by batch,
  // until caught up. Throws Error(bad_input) when centre and edge are one store or the
  // centre holds this edge id from another store; a centre going away mid-way throws
  // (what was committed stays; the next call resumes).
  static ForwardReport forward(Store& edge, Store& centre, const std::string& target,
                               const ForwardOptions& options = {});
  // Notes a failed attempt in the edge's mark (store info shows it).
  static void note_failure(Store& edge, const std::string& target, const std::string& error);
  // Removes the mark: retention no longer waits for that centre.
  static bool forget_target(Store& edge, const std::string& target);
  static std::vector<ForwardMark> marks(const Store& edge);
  // The edges that forward into this (centre) store.
  static std::vector<EdgeMark> edges(const Store& centre);
};

nlohmann::ordered_json to_json(const ForwardReport& r);
nlohmann::ordered_json to_json(const ForwardMark& m);
nlohmann::ordered_json to_json(const EdgeMark& m);

// The edge's background forwarder (`mmfuse inspect --forward-to URL`): every
// interval (or on notify()) it opens the centre when needed and forwards; a centre
// that is down is retried on the next pass, the edge keeps inspecting meanwhile.
class EdgeForwarder {
 public:
  using Log = std::function<void(const std::string&)>;
  EdgeForwarder(Store& edge, std::string centre_url, ForwardOptions options, int64_t interval_ms,
                Log log);
  ~EdgeForwarder();
  EdgeForwarder(const EdgeForwarder&) = delete;
  EdgeForwarder& operator=(const EdgeForwarder&) = delete;
  void start();
  void notify();  // forward soon (e.g. a round finished)
  // Stops the thread; with `flush`, one last pass first (errors only logged).
  void stop(bool flush);
  // One pass now on the calling thread; false (error logged and noted in the edge's
  // mark) on failure. With throw_config_errors, a centre that answers but refuses
  // (schema newer than this build, this edge id held by another store) throws instead.
  bool pass(bool throw_config_errors = false);

 private:
  void run();

  Store& edge_;
  std::string url_;
  ForwardOptions options_;
  int64_t interval_ms_;
  Log log_;
  std::unique_ptr<Store> centre_;  // used by one pass at a time (pass_mutex_)
  std::mutex pass_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false, poke_ = false;
  std::string last_error_;
  std::thread thread_;
};

}  // namespace mmfuse::store
