// A read replica's view of an index folder (serve with index.read_only): the
// generation the writer last published (DIR/published/, see index_store.h),
// loaded once and shared by every search. A watcher thread reads the marker
// every poll interval (one small file read) and, when it names a newer
// generation, loads it completely before swapping it in, so searches never wait
// for a load: a search keeps the generation it started with to its end, and the
// old one is freed when its last search finishes. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "index/index_store.h"

namespace mmfuse::server {

class IndexReplica {
 public:
  IndexReplica(std::string index_dir, std::chrono::milliseconds poll);
  ~IndexReplica();  // stops the watcher
  IndexReplica(const IndexReplica&) = delete;
  IndexReplica& operator=(const IndexReplica&) = delete;

  // A store over the generation in service, with its own catalogue connection
  // (for this request's thread); null while nothing is published yet.
  std::unique_ptr<IndexStore> open();
  // Reads the marker now and swaps in a newer generation (true when it did).
  // A generation that cannot be opened is logged and the current one kept.
  bool refresh();
  // The generation in service (-1: none).
  int64_t generation() const;
  const std::string& dir() const { return dir_; }

 private:
  void watch();

  std::string dir_;
  std::chrono::milliseconds poll_;
  std::mutex refresh_mutex_;  // one load at a time
  mutable std::mutex mutex_;  // guards current_, marker_ and stopping_
  std::shared_ptr<const IndexStore> current_;
  std::string marker_;  // what CURRENT said when current_ was loaded
  bool stopping_ = false;
  std::condition_variable stop_cv_;
  std::thread watcher_;
};

}  // namespace mmfuse::server
