// Store::Reader: a pooled read connection, handed back to the store's pool when it
// goes out of scope. Internal to src/store.
#pragma once

#include <memory>
#include <mutex>

#include "store/sql_connection.h"
#include "store/store.h"

namespace mmfuse::store {

class Store::Reader {
 public:
  Reader(const Store* store, std::unique_ptr<SqlConnection> c) : store_(store), c_(std::move(c)) {}
  ~Reader() {
    std::lock_guard<std::mutex> lock(store_->pool_mutex_);
    store_->readers_.push_back(std::move(c_));
  }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  SqlConnection& db() const { return *c_; }

 private:
  const Store* store_;
  std::unique_ptr<SqlConnection> c_;
};

}  // namespace mmfuse::store
