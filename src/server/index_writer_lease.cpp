// IndexWriterLease: take, renew (every third of the lease), release.
#include "server/index_writer_lease.h"

#include <unistd.h>

#include <filesystem>

#include "core/utc_time.h"

namespace mmfuse::server {

std::string index_writer_lease_name(const std::string& index_dir) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(index_dir, ec);
  if (ec) p = index_dir;
  std::string name = p.lexically_normal().string();
  while (name.size() > 1 && name.back() == '/') name.pop_back();
  return "index-writer:" + name;
}

std::string default_lease_holder() {
  char host[256] = {0};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return std::string(host[0] ? host : "unknown-host") + ":" + std::to_string(::getpid());
}

IndexWriterLease::IndexWriterLease(store::Store& store, const std::string& index_dir,
                                   std::string holder, int64_t lease_ms)
    : store_(store),
      name_(index_writer_lease_name(index_dir)),
      holder_(std::move(holder)),
      lease_ms_(lease_ms) {
  std::pair<std::string, int64_t> current;
  if (!store_.acquire_lease(name_, holder_, lease_ms_, &current)) {
    const int64_t left_ms = std::max<int64_t>(0, current.second - unix_time_ms());
    throw IndexWriterBusy("index " + index_dir + " is being written by " + current.first +
                              " (its writer lease runs " + std::to_string((left_ms + 999) / 1000) +
                              " s more unless renewed); retry later",
                          current.first);
  }
  renewer_ = std::thread([this] { renew_loop(); });
}

IndexWriterLease::~IndexWriterLease() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (renewer_.joinable()) renewer_.join();
  try {
    if (held()) store_.release_lease(name_, holder_);
  } catch (const std::exception&) {
    // The store is unreachable: the lease runs out by itself.
  }
}

bool IndexWriterLease::held() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return held_;
}

void IndexWriterLease::renew_loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    stop_cv_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(1, lease_ms_ / 3)));
    if (stopping_) break;
    lock.unlock();
    bool ok = true;
    try {
      ok = store_.acquire_lease(name_, holder_, lease_ms_);
    } catch (const std::exception&) {
      // A store hiccup: try again at the next tick; the lease has time left.
    }
    lock.lock();
    if (!ok) {
      held_ = false;
      break;
    }
  }
}

}  // namespace mmfuse::server
