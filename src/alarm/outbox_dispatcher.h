// Delivers the store's alarm outbox through sinks: per sink, the undelivered rows in
// id order; a row is marked delivered only after its sink confirmed; a failure
// schedules the row's next attempt with exponential back-off and jitter and holds
// back the rows behind it (delivery stays in order per sink). With the alarm id in
// every payload this gives: each alarm id reaches each sink at least once, in order,
// and a receiver that drops ids it has seen gets it exactly once (docs/alarms.md).
// Several processes may run dispatchers on one store (API replicas, workers): a
// sink is delivered only by the dispatcher holding its lease in the store, so
// each row still goes out once, in order (docs/scale-out.md).
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "alarm/sink.h"
#include "store/store.h"

namespace mmfuse::alarm {

struct DispatcherOptions {
  int64_t backoff_base_ms = 1000;   // first retry after about this long
  int64_t backoff_max_ms = 300000;  // cap of the doubling
  double jitter = 0.5;              // delay drawn uniformly from [d*(1-jitter), d]
  int poll_interval_ms = 500;       // background thread: look for due rows this often
  int batch = 32;                   // rows fetched per sink per pass
  int flush_timeout_ms = 5000;      // stop(): keep delivering due rows this long at most
  uint64_t seed = 0;                // jitter RNG seed (0 = random)
  int64_t lease_ms = 30000;         // a sink's lease; another process takes over after it
};

// Back-off before attempt `attempts + 1` after `attempts` failures: base * 2^(attempts-1)
// capped at max, then scaled by a factor drawn from [1 - jitter, 1].
int64_t backoff_delay_ms(const DispatcherOptions& o, int64_t attempts, double unit_random);

class OutboxDispatcher {
 public:
  // The store and sinks must outlive the dispatcher. Rows whose sink is not among
  // `sinks` stay in the outbox untouched.
  OutboxDispatcher(store::Store& store, std::vector<std::shared_ptr<Sink>> sinks,
                   const DispatcherOptions& options = {});
  ~OutboxDispatcher();  // stop() without flushing
  OutboxDispatcher(const OutboxDispatcher&) = delete;
  OutboxDispatcher& operator=(const OutboxDispatcher&) = delete;

  // One pass over all sinks: delivers each sink's due rows in order until one fails or
  // is not yet due. Returns the number delivered. Not to be called while start()ed.
  int deliver_due_once();
  // Runs passes on a background thread every poll_interval_ms (sooner after notify()).
  void start();
  // Wakes the background thread (e.g. right after an alarm was recorded).
  void notify();
  // Stops the thread; flush = then keep delivering due rows until none is left that
  // can go now, or flush_timeout_ms passes (graceful shutdown).
  void stop(bool flush = true);
  bool running() const { return thread_.joinable(); }  // call from the owning thread

  struct Stats {
    int64_t delivered = 0;
    int64_t failures = 0;
  };
  Stats stats() const;

 private:
  int deliver_sink(Sink& sink);
  void mark_delivered(int64_t outbox_id);
  // True while this dispatcher holds the sink's lease (renewed when half spent).
  bool hold_lease(const std::string& sink);
  void release_leases();
  void run();

  store::Store& store_;
  std::vector<std::shared_ptr<Sink>> sinks_;
  DispatcherOptions options_;
  std::mt19937_64 rng_;
  std::string holder_;                          // this dispatcher's name in sink_leases
  std::map<std::string, int64_t> lease_taken_;  // sink -> store time the lease was renewed
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool notified_ = false;
  std::atomic<bool> stop_requested_{false};  // the thread should end its pass early
  std::atomic<int64_t> delivered_{0};
  std::atomic<int64_t> failures_{0};
};

}  // namespace mmfuse::alarm
