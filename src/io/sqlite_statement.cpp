// SQLite statement and transaction helpers (see sqlite_statement.h).
#include "io/sqlite_statement.h"

#include "mmfuse/error.h"

namespace mmfuse {

namespace {

std::string database_name(sqlite3* db) {
  const char* file = sqlite3_db_filename(db, "main");
  return file && *file ? file : "sqlite";
}

}  // namespace

void sqlite_fail(sqlite3* db, const std::string& what) {
  throw_error(ErrorKind::internal, database_name(db) + ": " + what + ": " + sqlite3_errmsg(db));
}

void sql_exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db);
    sqlite3_free(err);
    throw_error(ErrorKind::internal, database_name(db) + ": " + msg);
  }
}

SqlStatement::SqlStatement(sqlite3* db, const char* sql) : db_(db) {
  if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK)
    sqlite_fail(db, std::string("prepare '") + sql + "'");
}

SqlStatement::~SqlStatement() {
  sqlite3_finalize(stmt_);
}

SqlStatement& SqlStatement::bind(int i, int64_t v) {
  sqlite3_bind_int64(stmt_, i, v);
  return *this;
}
SqlStatement& SqlStatement::bind(int i, double v) {
  sqlite3_bind_double(stmt_, i, v);
  return *this;
}
SqlStatement& SqlStatement::bind(int i, const std::string& v) {
  sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
SqlStatement& SqlStatement::bind_blob(int i, const void* data, size_t bytes) {
  sqlite3_bind_blob(stmt_, i, data, static_cast<int>(bytes), SQLITE_TRANSIENT);
  return *this;
}
SqlStatement& SqlStatement::bind_null(int i) {
  sqlite3_bind_null(stmt_, i);
  return *this;
}

bool SqlStatement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  sqlite_fail(db_, "step");
}

void SqlStatement::run() {
  while (step()) {
  }
}

void SqlStatement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::string SqlStatement::text(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  return p ? std::string(reinterpret_cast<const char*>(p),
                         static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
           : std::string();
}

const void* SqlStatement::blob(int col, size_t* bytes) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  *bytes = static_cast<size_t>(sqlite3_column_bytes(stmt_, col));
  return p;
}

SqlTransaction::SqlTransaction(sqlite3* db, bool write) : db_(db) {
  sql_exec(db, write ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED");
}

SqlTransaction::~SqlTransaction() {
  if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

void SqlTransaction::commit() {
  sql_exec(db_, "COMMIT");
  done_ = true;
}

}  // namespace mmfuse
