// IndexReplica: poll the published marker, load, swap.
#include "server/index_replica.h"

#include <iostream>

#include "mmfuse/error.h"

namespace mmfuse::server {

IndexReplica::IndexReplica(std::string index_dir, std::chrono::milliseconds poll)
    : dir_(std::move(index_dir)), poll_(poll) {
  watcher_ = std::thread([this] { watch(); });
}

IndexReplica::~IndexReplica() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
}

std::unique_ptr<IndexStore> IndexReplica::open() {
  std::shared_ptr<const IndexStore> store;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    store = current_;
  }
  if (!store) {
    // Before the watcher's first look (or nothing published yet): look now.
    refresh();
    std::lock_guard<std::mutex> lock(mutex_);
    store = current_;
  }
  return store ? store->same_generation() : nullptr;
}

bool IndexReplica::refresh() {
  std::lock_guard<std::mutex> one_load(refresh_mutex_);
  const std::string marker = IndexStore::published_marker(dir_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (marker.empty() || marker == marker_) return false;
  }
  std::shared_ptr<const IndexStore> fresh;
  std::string loaded_marker;
  try {
    auto store = IndexStore::open_published(dir_);
    loaded_marker = store->catalog().file().filename().string();
    fresh = std::move(store);
  } catch (const std::exception& e) {
    std::cerr << "mmfuse serve: index " << dir_ << ": cannot load published generation " << marker
              << " (still serving the previous one): " << e.what() << "\n";
    return false;
  }
  // CURRENT is the truth, also when it goes back (a folder rebuilt from scratch).
  std::lock_guard<std::mutex> lock(mutex_);
  current_ = std::move(fresh);
  marker_ = loaded_marker;
  return true;
}

int64_t IndexReplica::generation() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return current_ ? current_->generation() : -1;
}

void IndexReplica::watch() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    refresh();
    lock.lock();
    stop_cv_.wait_for(lock, poll_, [this] { return stopping_; });
  }
}

}  // namespace mmfuse::server
