// The SQLite back-end: one database file in WAL mode (readers never wait for the
// writer), PRAGMA user_version as the schema version, BEGIN IMMEDIATE for writes.
#include <sqlite3.h>

#include "io/sqlite_statement.h"
#include "mmfuse/error.h"
#include "store/backend.h"
#include "store/schema_sqlite.h"

namespace mmfuse::store {

namespace {

class SqliteCursor : public SqlCursor {
 public:
  SqliteCursor(sqlite3* db, const std::string& sql) : db_(db), s_(db, sql) {}
  void bind_i64(int i, int64_t v) override { s_.bind(i, v); }
  void bind_f64(int i, double v) override { s_.bind(i, v); }
  void bind_text(int i, const std::string& v) override { s_.bind(i, v); }
  void bind_null(int i) override { s_.bind_null(i); }
  bool step() override {
    if (s_.step()) return true;
    changes_ = sqlite3_changes(db_);
    return false;
  }
  void reset() override { s_.reset(); }
  int64_t changes() const override { return changes_; }
  int64_t i64(int col) const override { return s_.i64(col); }
  double f64(int col) const override { return s_.f64(col); }
  std::string text(int col) const override { return s_.text(col); }
  bool is_null(int col) const override { return s_.is_null(col); }

 private:
  sqlite3* db_;
  SqlStatement s_;
  int64_t changes_ = 0;
};

class SqliteConnection : public SqlConnection {
 public:
  explicit SqliteConnection(sqlite3* db) : db_(db) {}
  ~SqliteConnection() override { sqlite3_close(db_); }
  std::unique_ptr<SqlCursor> prepare(const std::string& sql) override {
    return std::make_unique<SqliteCursor>(db_, sql);
  }
  void exec(const std::string& sql) override { sql_exec(db_, sql.c_str()); }
  void begin(bool write) override { sql_exec(db_, write ? "BEGIN IMMEDIATE" : "BEGIN"); }
  void commit() override { sql_exec(db_, "COMMIT"); }
  void rollback() noexcept override { sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr); }

 private:
  sqlite3* db_;
};

class SqliteBackend : public Backend {
 public:
  SqliteBackend(std::string file, bool synchronous_full)
      : file_(std::move(file)), synchronous_full_(synchronous_full) {}
  const char* kind() const override { return "sqlite"; }
  std::string describe() const override { return "sqlite://" + file_; }

  std::unique_ptr<SqlConnection> connect(bool reader) const override {
    sqlite3* db = nullptr;
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(file_.c_str(), &db, flags, nullptr) != SQLITE_OK) {
      std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
      sqlite3_close(db);
      throw_error(ErrorKind::bad_input, file_ + ": cannot open the store: " + msg);
    }
    auto conn = std::make_unique<SqliteConnection>(db);
    sqlite3_busy_timeout(db, 10000);
    try {
      sql_exec(db, "PRAGMA foreign_keys=ON");
      if (reader) {
        sql_exec(db, "PRAGMA query_only=ON");
      } else {
        // WAL: readers keep reading while the writer commits. FULL: COMMIT returns once
        // the WAL is fsynced, so an alarm that was recorded survives a power cut too.
        SqlStatement mode(db, "PRAGMA journal_mode=WAL");
        if (!mode.step() || mode.text(0) != "wal")
          throw_error(ErrorKind::bad_input, "the file system does not support WAL mode");
        sql_exec(db, synchronous_full_ ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
      }
    } catch (const Error& e) {
      throw_error(ErrorKind::bad_input, file_ + ": not a usable mmfuse store (" + e.what() + ")");
    }
    return conn;
  }

  void migrate(SqlConnection& writer) const override {
    for (;;) {
      // BEGIN IMMEDIATE: re-read the version under the write lock (other processes).
      Transaction tx(writer, true);
      const int version = schema_version(writer);
      if (version > kSqliteMigrationCount)
        throw_error(ErrorKind::unsupported,
                    file_ + ": schema version " + std::to_string(version) +
                        " is newer than this mmfuse knows (" +
                        std::to_string(kSqliteMigrationCount) + ")");
      if (version == kSqliteMigrationCount) {
        tx.commit();
        return;
      }
      writer.exec(kSqliteMigrations[version]);
      writer.exec("PRAGMA user_version=" + std::to_string(version + 1));
      tx.commit();
    }
  }
  int schema_version(SqlConnection& c) const override {
    return static_cast<int>(sql_scalar(c, "PRAGMA user_version"));
  }
  int latest_schema_version() const override { return kSqliteMigrationCount; }
  std::string integrity_check(SqlConnection& c) const override {
    Stmt s(c, "PRAGMA integrity_check");
    return s.step() ? s.text(0) : std::string("no answer");
  }
  void checkpoint(SqlConnection& writer) const override {
    writer.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }
  void lock_key(SqlConnection&, const std::string&) const override {}
  const char* skip_locked() const override { return ""; }

 private:
  std::string file_;
  bool synchronous_full_;
};

}  // namespace

std::unique_ptr<Backend> make_sqlite_backend(const std::string& db_file, bool synchronous_full) {
  return std::make_unique<SqliteBackend>(db_file, synchronous_full);
}

}  // namespace mmfuse::store
