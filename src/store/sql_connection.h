// The store's view of a database connection, the same for every back-end: prepared
// statements with typed binds and columns, scripts, and transactions. The store's
// semantics (store.cpp, store_rows.cpp, retention.cpp) are written once against it;
// each back-end (sqlite_backend, postgres_backend) turns it into its client library
// and owns its SQL dialect differences. Internal to src/store.
//
// SQL text uses SQLite's placeholders (`?` or `?N`); the PostgreSQL back-end rewrites
// them to `$N`. Binds are 1-based and columns 0-based.
// Thread-safety: a connection and its statements are used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace mmfuse::store {

class SqlCursor {
 public:
  virtual ~SqlCursor() = default;
  virtual void bind_i64(int i, int64_t v) = 0;
  virtual void bind_f64(int i, double v) = 0;
  virtual void bind_text(int i, const std::string& v) = 0;
  virtual void bind_null(int i) = 0;
  virtual bool step() = 0;  // runs the statement on the first call; true while a row is there
  virtual void reset() = 0;  // for re-use with new binds
  virtual int64_t changes() const = 0;  // rows changed by the last completed run
  virtual int64_t i64(int col) const = 0;
  virtual double f64(int col) const = 0;
  virtual std::string text(int col) const = 0;
  virtual bool is_null(int col) const = 0;
};

class SqlConnection {
 public:
  virtual ~SqlConnection() = default;
  virtual std::unique_ptr<SqlCursor> prepare(const std::string& sql) = 0;
  // One or more statements without parameters or results.
  virtual void exec(const std::string& sql) = 0;
  // write: a transaction that will write (SQLite: BEGIN IMMEDIATE, taking the file's
  // write lock up front); read: one consistent snapshot for all its statements.
  virtual void begin(bool write) = 0;
  virtual void commit() = 0;
  virtual void rollback() noexcept = 0;
};

// A prepared statement with chainable binds (the API the store's code is written in).
class Stmt {
 public:
  Stmt(SqlConnection& c, const std::string& sql) : cur_(c.prepare(sql)) {}
  Stmt& bind(int i, int64_t v) {
    cur_->bind_i64(i, v);
    return *this;
  }
  Stmt& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
  Stmt& bind(int i, double v) {
    cur_->bind_f64(i, v);
    return *this;
  }
  Stmt& bind(int i, const std::string& v) {
    cur_->bind_text(i, v);
    return *this;
  }
  Stmt& bind_null(int i) {
    cur_->bind_null(i);
    return *this;
  }
  bool step() { return cur_->step(); }
  // Steps to completion; returns the rows changed.
  int64_t run() {
    while (cur_->step()) {
    }
    return cur_->changes();
  }
  void reset() { cur_->reset(); }
  int64_t i64(int col) const { return cur_->i64(col); }
  double f64(int col) const { return cur_->f64(col); }
  std::string text(int col) const { return cur_->text(col); }
  bool is_null(int col) const { return cur_->is_null(col); }

 private:
  std::unique_ptr<SqlCursor> cur_;
};

// begin() ... commit(); rolls back in the destructor unless committed, so an exception
// mid-transaction leaves nothing half-written.
class Transaction {
 public:
  Transaction(SqlConnection& c, bool write) : c_(c) { c_.begin(write); }
  ~Transaction() {
    if (!done_) c_.rollback();
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit() {
    c_.commit();
    done_ = true;
  }

 private:
  SqlConnection& c_;
  bool done_ = false;
};

// A single integer result (count(*) and the like); `fallback` when there is no row.
inline int64_t sql_scalar(SqlConnection& c, const std::string& sql, int64_t fallback = 0) {
  Stmt s(c, sql);
  return s.step() && !s.is_null(0) ? s.i64(0) : fallback;
}

}  // namespace mmfuse::store
