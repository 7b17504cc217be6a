// Thin RAII helpers over the SQLite C API, shared by the store and the index
// catalogue: prepared statements with typed binds/columns, exec, and a
// transaction guard that rolls back unless committed. Errors become
// mmfuse::Error(internal) naming the database file.
// Thread-safety: a statement belongs to one connection, used by one thread at a time.
#pragma once

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace mmfuse {

// Throws Error(internal): "<database file>: <what>: <sqlite's message>".
[[noreturn]] void sqlite_fail(sqlite3* db, const std::string& what);

// Runs one or more SQL statements without results.
void sql_exec(sqlite3* db, const char* sql);

// One prepared statement; binds are 1-based and columns 0-based, as in SQLite.
class SqlStatement {
 public:
  SqlStatement(sqlite3* db, const char* sql);
  SqlStatement(sqlite3* db, const std::string& sql) : SqlStatement(db, sql.c_str()) {}
  ~SqlStatement();
  SqlStatement(const SqlStatement&) = delete;
  SqlStatement& operator=(const SqlStatement&) = delete;

  SqlStatement& bind(int i, int64_t v);
  SqlStatement& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
  SqlStatement& bind(int i, double v);
  SqlStatement& bind(int i, const std::string& v);
  SqlStatement& bind_blob(int i, const void* data, size_t bytes);
  SqlStatement& bind_null(int i);
  bool step();   // true while a row is available
  void run();    // steps to completion
  void reset();  // for re-use with new binds

  int64_t i64(int col) const { return sqlite3_column_int64(stmt_, col); }
  double f64(int col) const { return sqlite3_column_double(stmt_, col); }
  std::string text(int col) const;
  // The column's bytes (valid until the next step/reset); their count in *bytes.
  const void* blob(int col, size_t* bytes) const;
  bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// BEGIN IMMEDIATE (write) or DEFERRED (read) ... COMMIT; rolls back in the destructor
// unless commit() ran (an exception mid-transaction leaves nothing half-written).
class SqlTransaction {
 public:
  SqlTransaction(sqlite3* db, bool write);
  ~SqlTransaction();
  SqlTransaction(const SqlTransaction&) = delete;
  SqlTransaction& operator=(const SqlTransaction&) = delete;
  void commit();

 private:
  sqlite3* db_;
  bool done_ = false;
};

}  // namespace mmfuse
