// Thin RAII helpers over the SQLite C API for the store: prepared statements with
// typed binds/columns, exec, and a transaction guard that rolls back unless committed.
// Errors become mmfuse::Error(internal) naming the database file.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace mmfuse::store {

// Compact JSON text; invalid UTF-8 in strings becomes U+FFFD instead of throwing (a
// detector message with a Latin-1 file name must not cost the whole inspection).
inline std::string json_text(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

[[noreturn]] void sqlite_fail(sqlite3* db, const std::string& what);

// Runs one or more SQL statements without results.
void sql_exec(sqlite3* db, const char* sql);

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql);
  Stmt(sqlite3* db, const std::string& sql) : Stmt(db, sql.c_str()) {}
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, int64_t v);
  Stmt& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
  Stmt& bind(int i, double v);
  Stmt& bind(int i, const std::string& v);
  Stmt& bind_null(int i);
  bool step();   // true while a row is available
  void run();    // steps to completion
  void reset();  // for re-use with new binds

  int64_t i64(int col) const { return sqlite3_column_int64(stmt_, col); }
  double f64(int col) const { return sqlite3_column_double(stmt_, col); }
  std::string text(int col) const;
  bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// BEGIN IMMEDIATE (write) or DEFERRED (read) ... COMMIT; rolls back in the destructor
// unless commit() ran (an exception mid-transaction leaves nothing half-written).
class Transaction {
 public:
  Transaction(sqlite3* db, bool write);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  sqlite3* db_;
  bool done_ = false;
};

}  // namespace mmfuse::store
