// The PostgreSQL back-end (libpq): a server shared by any number of processes and
// machines. Dialect differences from SQLite live here: placeholders (`?N` -> `$N`),
// rowid (rounds.seq), the schema_version table, advisory locks between processes,
// REPEATABLE READ snapshots for reads, and reconnecting after the server went away.
#include <libpq-fe.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <vector>

#include "mmfuse/error.h"
#include "store/backend.h"
#include "store/schema_postgres.h"
#include "store/store.h"

namespace mmfuse::store {

namespace {

// Parameter types sent with each statement, so the server never has to guess.
constexpr Oid kInt8 = 20, kFloat8 = 701, kText = 25;
// pg_advisory_xact_lock key that serialises migrations between processes.
constexpr int64_t kMigrationLock = 0x6d6d6675'73650001;

bool ident_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// SQLite-style SQL -> PostgreSQL: `?N` -> `$N`, `?` -> the next number, the word
// `rowid` -> `seq`; text inside '...' is copied unchanged.
std::string translate(const std::string& sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int next = 0;
  for (size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (c == '\'') {
      const size_t end = sql.find('\'', i + 1);
      const size_t stop = end == std::string::npos ? sql.size() : end + 1;
      out.append(sql, i, stop - i);
      i = stop - 1;
    } else if (c == '?') {
      size_t j = i + 1;
      int n = 0;
      while (j < sql.size() && sql[j] >= '0' && sql[j] <= '9') n = n * 10 + (sql[j++] - '0');
      if (j == i + 1) n = next + 1;
      next = std::max(next, n);
      out.push_back('$');
      out += std::to_string(n);
      i = j - 1;
    } else if (c == 'r' && sql.compare(i, 5, "rowid") == 0 && (i == 0 || !ident_char(sql[i - 1])) &&
               (i + 5 >= sql.size() || !ident_char(sql[i + 5]))) {
      out += "seq";
      i += 4;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string trimmed(const char* msg) {
  std::string s = msg ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

void ignore_notice(void*, const char*) {}

// PostgreSQL text is valid UTF-8 without NUL bytes: anything else in a bound string
// (a Latin-1 file name in a detector message) becomes U+FFFD instead of failing the
// whole inspection. SQLite keeps such bytes as given.
std::string valid_text(const std::string& in) {
  std::string out;
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  const size_t n = in.size();
  size_t i = 0, copied = 0;
  bool changed = false;
  while (i < n) {
    const unsigned char c = p[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool ok = len > 0 && c != 0 && i + len <= n && !(len == 2 && c < 0xc2);
    for (size_t k = 1; ok && k < len; ++k) ok = (p[i + k] & 0xc0) == 0x80;
    if (ok && len == 3) {
      const unsigned cp = ((c & 0x0fu) << 12) | ((p[i + 1] & 0x3fu) << 6) | (p[i + 2] & 0x3fu);
      ok = cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff);
    }
    if (ok && len == 4) {
      const unsigned cp = ((c & 0x07u) << 18) | ((p[i + 1] & 0x3fu) << 12) |
                          ((p[i + 2] & 0x3fu) << 6) | (p[i + 3] & 0x3fu);
      ok = cp >= 0x10000 && cp <= 0x10ffff;
    }
    if (ok) {
      i += len;
      continue;
    }
    if (!changed) out.reserve(n + 8);
    changed = true;
    out.append(in, copied, i - copied);
    out += "\xEF\xBF\xBD";
    ++i;
    copied = i;
  }
  if (!changed) return in;
  out.append(in, copied, n - copied);
  return out;
}

class PgConnection;

class PgCursor : public SqlCursor {
 public:
  PgCursor(PgConnection& c, std::string sql) : c_(c), sql_(std::move(sql)) {}
  ~PgCursor() override { clear(); }
  void bind_i64(int i, int64_t v) override { set(i, std::to_string(v), kInt8); }
  void bind_f64(int i, double v) override {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    set(i, buf, kFloat8);
  }
  void bind_text(int i, const std::string& v) override { set(i, valid_text(v), kText); }
  void bind_null(int i) override {
    grow(i);
    values_[i - 1].reset();
  }
  bool step() override;
  void reset() override {
    clear();
    values_.clear();
    types_.clear();
  }
  int64_t changes() const override { return changes_; }
  int64_t i64(int col) const override {
    return std::strtoll(PQgetvalue(res_, row_, col), nullptr, 10);
  }
  double f64(int col) const override { return std::strtod(PQgetvalue(res_, row_, col), nullptr); }
  std::string text(int col) const override {
    return std::string(PQgetvalue(res_, row_, col),
                       static_cast<size_t>(PQgetlength(res_, row_, col)));
  }
  bool is_null(int col) const override { return PQgetisnull(res_, row_, col) != 0; }

 private:
  void grow(int i) {
    MMFUSE_ASSERT(i >= 1);
    if (values_.size() < static_cast<size_t>(i)) {
      values_.resize(static_cast<size_t>(i));
      types_.resize(static_cast<size_t>(i), 0);
    }
  }
  void set(int i, std::string v, Oid type) {
    grow(i);
    values_[i - 1] = std::move(v);
    types_[i - 1] = type;
  }
  void clear() {
    if (res_) PQclear(res_);
    res_ = nullptr;
    row_ = -1;
  }

  PgConnection& c_;
  std::string sql_;
  std::vector<std::optional<std::string>> values_;
  std::vector<Oid> types_;
  PGresult* res_ = nullptr;
  int row_ = -1;
  int64_t changes_ = 0;
};

class PgConnection : public SqlConnection {
 public:
  PgConnection(PGconn* conn, bool reader) : conn_(conn), reader_(reader) {}
  ~PgConnection() override { PQfinish(conn_); }
  std::unique_ptr<SqlCursor> prepare(const std::string& sql) override {
    return std::make_unique<PgCursor>(*this, translate(sql));
  }
  void exec(const std::string& sql) override {
    ensure_connected();
    PGresult* r = PQexec(conn_, sql.c_str());
    check(r, sql);
    PQclear(r);
  }
  void begin(bool write) override {
    const char* sql = write || !reader_ ? "BEGIN" : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
    try {
      exec(sql);
    } catch (const Error&) {
      // A connection found dead only now (the server restarted since its last use):
      // nothing of this transaction has happened yet, so reconnect and begin again.
      if (PQstatus(conn_) == CONNECTION_OK) throw;
      exec(sql);
    }
  }
  void commit() override { exec("COMMIT"); }
  void rollback() noexcept override {
    if (PQstatus(conn_) != CONNECTION_OK) return;  // the server dropped the transaction
    PGresult* r = PQexec(conn_, "ROLLBACK");
    PQclear(r);
  }

  // Outside a transaction a broken connection (server restarted, network cut) is
  // re-opened; inside one the statement fails and the caller's transaction rolls back.
  void ensure_connected() {
    if (PQstatus(conn_) == CONNECTION_OK) return;
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK)
      throw StoreUnavailable(ErrorKind::internal,
                             "postgresql: connection lost: " + trimmed(PQerrorMessage(conn_)));
    setup_session(conn_, reader_);
  }
  // Throws for a failed result (and frees it).
  void check(PGresult* r, const std::string& sql) {
    const ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return;
    std::string msg = r ? trimmed(PQresultErrorMessage(r)) : trimmed(PQerrorMessage(conn_));
    if (msg.empty()) msg = trimmed(PQerrorMessage(conn_));
    std::string head = sql.substr(0, 120);
    // The server went away (connection broken, shutting down, crashed, starting up):
    // callers that can wait retry once it answers again.
    const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    const std::string code = state ? state : "";
    PQclear(r);
    if (PQstatus(conn_) != CONNECTION_OK || code.rfind("08", 0) == 0 ||
        code.rfind("57P", 0) == 0)
      throw StoreUnavailable(ErrorKind::internal,
                             "postgresql: server unavailable: " + msg + " (in: " + head + ")");
    throw_error(ErrorKind::internal, "postgresql: " + msg + " (in: " + head + ")");
  }
  PGconn* raw() { return conn_; }

  static void setup_session(PGconn* c, bool reader) {
    PQsetNoticeProcessor(c, ignore_notice, nullptr);
    PGresult* r = PQexec(c, reader ? "SET default_transaction_read_only = on; SET TIME ZONE 'UTC'"
                                   : "SET TIME ZONE 'UTC'");
    PQclear(r);
  }

 private:
  PGconn* conn_;
  bool reader_;
};

bool PgCursor::step() {
  if (!res_) {
    c_.ensure_connected();
    std::vector<const char*> ptrs(values_.size());
    for (size_t i = 0; i < values_.size(); ++i) ptrs[i] = values_[i] ? values_[i]->c_str() : nullptr;
    const bool in_transaction = PQtransactionStatus(c_.raw()) != PQTRANS_IDLE;
    auto run = [&] {
      return PQexecParams(c_.raw(), sql_.c_str(), static_cast<int>(values_.size()),
                          types_.data(), ptrs.data(), nullptr, nullptr, 0);
    };
    PGresult* r = run();
    if (!in_transaction && PQstatus(c_.raw()) != CONNECTION_OK) {
      // A lone statement on a connection that died since its last use: run it again on
      // a new one (inside a transaction the caller's rollback handles it instead).
      PQclear(r);
      c_.ensure_connected();
      r = run();
    }
    c_.check(r, sql_);
    res_ = r;
    row_ = -1;
    const char* n = PQcmdTuples(res_);
    changes_ = n && *n ? std::strtoll(n, nullptr, 10) : 0;
  }
  ++row_;
  return row_ < PQntuples(res_);
}

class PostgresBackend : public Backend {
 public:
  explicit PostgresBackend(std::string conninfo) : conninfo_(std::move(conninfo)) {}
  const char* kind() const override { return "postgresql"; }
  std::string describe() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return description_.empty() ? std::string("postgresql://") : description_;
  }

  std::unique_ptr<SqlConnection> connect(bool reader) const override {
    // A default connect timeout (unless PGCONNECT_TIMEOUT or the URL sets one), so an
    // unreachable server is an error at start instead of a hang. Later keywords win.
    const char* env_timeout = std::getenv("PGCONNECT_TIMEOUT");
    const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
    const char* vals[] = {env_timeout ? env_timeout : "10", "mmfuse", conninfo_.c_str(), nullptr};
    PGconn* c = PQconnectdbParams(keys, vals, 1);
    if (!c) throw_error(ErrorKind::internal, "postgresql: out of memory");
    if (PQstatus(c) != CONNECTION_OK) {
      const std::string msg = trimmed(PQerrorMessage(c));
      PQfinish(c);
      throw StoreUnavailable(ErrorKind::bad_input,
                             "store: cannot connect to PostgreSQL (" + where() + "): " + msg);
    }
    PgConnection::setup_session(c, reader);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (description_.empty())
        description_ = std::string("postgresql://") + PQuser(c) + "@" + PQhost(c) + ":" +
                       PQport(c) + "/" + PQdb(c);
    }
    return std::make_unique<PgConnection>(c, reader);
  }

  void migrate(SqlConnection& writer) const override {
    for (;;) {
      Transaction tx(writer, true);
      // One migrating process at a time; the others wait here, then find it done.
      Stmt(writer, "SELECT pg_advisory_xact_lock(?)").bind(1, kMigrationLock).run();
      writer.exec(
          "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER PRIMARY KEY, "
          "applied_ms BIGINT NOT NULL)");
      const int version = schema_version(writer);
      if (version > kPostgresMigrationCount)
        throw_error(ErrorKind::unsupported,
                    describe() + ": schema version " + std::to_string(version) +
                        " is newer than this mmfuse knows (" +
                        std::to_string(kPostgresMigrationCount) + ")");
      if (version == kPostgresMigrationCount) {
        tx.commit();
        return;
      }
      writer.exec(kPostgresMigrations[version]);
      Stmt(writer,
           "INSERT INTO schema_version(version, applied_ms) VALUES(?, "
           "(extract(epoch from clock_timestamp()) * 1000)::bigint)")
          .bind(1, version + 1)
          .run();
      tx.commit();
    }
  }
  int schema_version(SqlConnection& c) const override {
    return static_cast<int>(sql_scalar(c, "SELECT coalesce(max(version), 0) FROM schema_version"));
  }
  int latest_schema_version() const override { return kPostgresMigrationCount; }
  // PostgreSQL checks its own pages (checksums, WAL); here: the server answers and
  // every table of the schema is readable.
  std::string integrity_check(SqlConnection& c) const override {
    for (const char* t : {"devices", "rounds", "inspections", "inspection_modalities",
                          "sensor_series", "sensor_readings", "alarms", "outbox", "evidence_refs"})
      sql_scalar(c, std::string("SELECT count(*) FROM (SELECT 1 FROM ") + t + " LIMIT 1) x");
    return "ok";
  }
  void checkpoint(SqlConnection&) const override {}  // the server's own business
  const char* skip_locked() const override { return " FOR UPDATE SKIP LOCKED"; }
  void lock_key(SqlConnection& writer, const std::string& key) const override {
    Stmt(writer, "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))").bind(1, key).run();
  }

 private:
  // host:port/db for messages before any connection worked (no password).
  std::string where() const {
    std::string out;
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(conninfo_.c_str(), &err);
    if (err) PQfreemem(err);
    auto get = [&](const char* key, const char* env) -> std::string {
      if (opts)
        for (PQconninfoOption* o = opts; o->keyword; ++o)
          if (std::string(o->keyword) == key && o->val && *o->val) return o->val;
      const char* e = std::getenv(env);
      return e ? e : "";
    };
    const std::string host = get("host", "PGHOST"), port = get("port", "PGPORT"),
                      db = get("dbname", "PGDATABASE");
    if (opts) PQconninfoFree(opts);
    out = (host.empty() ? "default host" : host) + (port.empty() ? "" : ":" + port) +
          (db.empty() ? "" : "/" + db);
    return out;
  }

  std::string conninfo_;
  mutable std::mutex mutex_;
  mutable std::string description_;
};

}  // namespace

std::unique_ptr<Backend> make_postgres_backend(const std::string& conninfo) {
  return std::make_unique<PostgresBackend>(conninfo);
}

}  // namespace mmfuse::store
