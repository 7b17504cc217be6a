// One writer per index folder across processes and machines: a lease named
// "index-writer:<folder>" in the shared store (the table the outbox sinks'
// dispatch leases live in; SQLite or PostgreSQL), taken before a write, renewed
// while it runs and released after. A writer killed mid-write blocks others
// until its lease runs out. Used by the server's index write routes and by
// `mmfuse index add|add-text|sync|remove|publish --store URL`.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "mmfuse/error.h"
#include "store/store.h"

namespace mmfuse::server {

// Another holder has the lease (kind bad_input: exit 2 in the CLI; the server answers 409).
class IndexWriterBusy : public Error {
 public:
  IndexWriterBusy(const std::string& message, std::string holder)
      : Error(ErrorKind::bad_input, message), holder_(std::move(holder)) {}
  const std::string& holder() const { return holder_; }

 private:
  std::string holder_;
};

// "index-writer:" + the folder's absolute, normalised path (every writer of a
// shared folder mounts it at the same path, as the k8s manifests do).
std::string index_writer_lease_name(const std::string& index_dir);
// host:pid, what other writers are told holds the lease.
std::string default_lease_holder();

class IndexWriterLease {
 public:
  static constexpr int64_t kDefaultLeaseMs = 30000;
  // Takes the lease or throws IndexWriterBusy naming the holder and how long
  // its lease still runs.
  IndexWriterLease(store::Store& store, const std::string& index_dir,
                   std::string holder = default_lease_holder(), int64_t lease_ms = kDefaultLeaseMs);
  // Stops renewing and releases the lease (the next writer need not wait).
  ~IndexWriterLease();
  IndexWriterLease(const IndexWriterLease&) = delete;
  IndexWriterLease& operator=(const IndexWriterLease&) = delete;

  // False once a renewal found the lease taken by another (this writer stalled
  // past its lease); the write should then be abandoned.
  bool held() const;

 private:
  void renew_loop();

  store::Store& store_;
  std::string name_, holder_;
  int64_t lease_ms_;
  mutable std::mutex mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  bool held_ = true;
  std::thread renewer_;
};

}  // namespace mmfuse::server
