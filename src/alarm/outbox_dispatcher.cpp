// Outbox delivery: in order per sink, marked delivered only after the sink confirmed,
// failures retried with exponential back-off and jitter (see outbox_dispatcher.h).
#include "alarm/outbox_dispatcher.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>
#include <thread>

#include <unistd.h>

#include "mmfuse/error.h"

namespace mmfuse::alarm {

int64_t backoff_delay_ms(const DispatcherOptions& o, int64_t attempts, double unit_random) {
  const int64_t n = std::max<int64_t>(1, attempts);
  double d = static_cast<double>(o.backoff_base_ms);
  for (int64_t i = 1; i < n && d < static_cast<double>(o.backoff_max_ms); ++i) d *= 2.0;
  d = std::min(d, static_cast<double>(o.backoff_max_ms));
  // Jitter spreads the retries of many edge boxes that lost the same endpoint.
  const double jitter = std::clamp(o.jitter, 0.0, 1.0);
  const double factor = 1.0 - jitter * std::clamp(unit_random, 0.0, 1.0);
  return std::max<int64_t>(1, static_cast<int64_t>(std::llround(d * factor)));
}

OutboxDispatcher::OutboxDispatcher(store::Store& store, std::vector<std::shared_ptr<Sink>> sinks,
                                   const DispatcherOptions& options)
    : store_(store), sinks_(std::move(sinks)), options_(options) {
  MMFUSE_CHECK(options.backoff_base_ms > 0 && options.backoff_max_ms >= options.backoff_base_ms,
               bad_input, "outbox: back-off must satisfy 0 < base <= max");
  MMFUSE_CHECK(options.poll_interval_ms > 0 && options.batch > 0, bad_input,
               "outbox: poll_interval_ms and batch must be > 0");
  std::set<std::string> names;
  for (const auto& s : sinks_) {
    MMFUSE_CHECK(s != nullptr, bad_input, "outbox: a sink is null");
    MMFUSE_CHECK(names.insert(s->name()).second, bad_input,
                 "outbox: two sinks are named '" + s->name() + "'");
  }
  MMFUSE_CHECK(options.lease_ms > 0, bad_input, "outbox: lease_ms must be > 0");
  rng_.seed(options.seed != 0 ? options.seed : std::random_device{}());
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = 0;
  holder_ = std::string(host) + ":" + std::to_string(::getpid()) + ":" +
            std::to_string(std::random_device{}());
}

bool OutboxDispatcher::hold_lease(const std::string& sink) {
  const int64_t now = store_.clock().now_ms();
  auto it = lease_taken_.find(sink);
  if (it != lease_taken_.end() && now - it->second < options_.lease_ms / 2) return true;
  if (!store_.acquire_sink_lease(sink, holder_, options_.lease_ms)) {
    lease_taken_.erase(sink);
    return false;
  }
  lease_taken_[sink] = now;
  return true;
}

void OutboxDispatcher::release_leases() {
  for (const auto& [sink, at] : lease_taken_) {
    try {
      store_.release_sink_lease(sink, holder_);
    } catch (const std::exception&) {
      // The lease runs out by itself.
    }
  }
  lease_taken_.clear();
}

OutboxDispatcher::~OutboxDispatcher() {
  stop(false);
  release_leases();
}

// The sink has the row: record that, riding out a database restart (up to one lease;
// while this process holds the sink's lease nobody else delivers). Giving up would
// send the row again from the next pass, a duplicate the receiver has to drop.
void OutboxDispatcher::mark_delivered(int64_t outbox_id) {
  const auto give_up = std::chrono::steady_clock::now() +
                       std::chrono::milliseconds(options_.lease_ms);
  for (int wait_ms = 50;; wait_ms = std::min(wait_ms * 2, 1000)) {
    try {
      store_.mark_delivered(outbox_id, store_.clock().now_ms());
      return;
    } catch (const store::StoreUnavailable&) {
      if (stop_requested_.load() || std::chrono::steady_clock::now() >= give_up) throw;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
  }
}

int OutboxDispatcher::deliver_sink(Sink& sink) {
  int delivered = 0;
  for (;;) {
    const auto rows = store_.pending_outbox(sink.name(), options_.batch);
    if (rows.empty()) return delivered;
    for (const auto& row : rows) {
      // Another process's dispatcher delivers this sink while it holds the lease.
      if (!hold_lease(sink.name())) return delivered;
      const int64_t now = store_.clock().now_ms();
      // In order: the rows behind a row that waits for its retry wait with it.
      if (row.next_attempt_at_ms > now) return delivered;
      DeliveryResult r = sink.deliver(row);
      if (r.delivered) {
        mark_delivered(row.id);
        ++delivered;
        delivered_.fetch_add(1);
      } else {
        std::uniform_real_distribution<double> unit(0.0, 1.0);
        const int64_t delay = backoff_delay_ms(options_, row.attempts + 1, unit(rng_));
        store_.mark_failed(row.id, r.error, store_.clock().now_ms() + delay);
        failures_.fetch_add(1);
        return delivered;
      }
      if (stop_requested_.load()) return delivered;  // stop() is waiting for the thread
    }
  }
}

int OutboxDispatcher::deliver_due_once() {
  int delivered = 0;
  for (auto& sink : sinks_) delivered += deliver_sink(*sink);
  return delivered;
}

void OutboxDispatcher::start() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void OutboxDispatcher::notify() {
  std::lock_guard<std::mutex> lock(mutex_);
  notified_ = true;
  cv_.notify_all();
}

void OutboxDispatcher::run() {
  for (;;) {
    try {
      deliver_due_once();
    } catch (const std::exception&) {
      // A store error (disk full, locked for too long) must not kill delivery: the
      // rows stay pending and the next pass tries again.
      failures_.fetch_add(1);
    }
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait_for(lock, std::chrono::milliseconds(options_.poll_interval_ms),
                 [&] { return stopping_ || notified_; });
    notified_ = false;
    if (stopping_) return;
  }
}

void OutboxDispatcher::stop(bool flush) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    if (thread_.joinable()) stop_requested_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = false;
    stop_requested_ = false;
  }
  if (!flush) return;
  // Graceful shutdown: deliver what can go now, until nothing moves or time is up.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.flush_timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      if (deliver_due_once() == 0) break;
    } catch (const std::exception&) {
      // The store is away: the rows stay pending for the next dispatcher.
      failures_.fetch_add(1);
      break;
    }
  }
}

OutboxDispatcher::Stats OutboxDispatcher::stats() const {
  return {delivered_.load(), failures_.load()};
}

}  // namespace mmfuse::alarm
