// A store back-end: where the database lives and what differs between SQL engines
// (connections, the schema's dialect and its migrations, locks between processes,
// maintenance). Store (store.cpp) holds one and keeps all the semantics. Back-ends:
// SQLite (sqlite_backend.cpp, the default for one box) and PostgreSQL
// (postgres_backend.cpp, shared by several processes and machines). Internal to src/store.
#pragma once

#include <memory>
#include <string>

#include "store/sql_connection.h"

namespace mmfuse::store {

class Backend {
 public:
  virtual ~Backend() = default;
  // "sqlite" or "postgresql".
  virtual const char* kind() const = 0;
  // Where the data is, for messages and `store info` (never a password).
  virtual std::string describe() const = 0;
  // A new connection; readers refuse writes where the engine can.
  virtual std::unique_ptr<SqlConnection> connect(bool reader) const = 0;
  // Brings the schema to the newest version this build knows, one migration per
  // transaction, safe against other processes doing the same. Throws
  // Error(unsupported) for a schema newer than this build.
  virtual void migrate(SqlConnection& writer) const = 0;
  virtual int schema_version(SqlConnection& c) const = 0;
  virtual int latest_schema_version() const = 0;
  // "ok", or the engine's first complaint.
  virtual std::string integrity_check(SqlConnection& c) const = 0;
  // Flushes the engine's log into the main file where that means something.
  virtual void checkpoint(SqlConnection& writer) const = 0;
  // Inside a write transaction: waits until no other process's transaction holds
  // `key` (held until commit). The alarm de-duplication check-then-insert takes it.
  // SQLite needs nothing (its write transactions are serialised by the file lock).
  virtual void lock_key(SqlConnection& writer, const std::string& key) const = 0;
  // Appended to a SELECT that picks rows to claim: " FOR UPDATE SKIP LOCKED" where
  // concurrent writers exist (PostgreSQL), "" where writers are serialised (SQLite).
  virtual const char* skip_locked() const = 0;
};

std::unique_ptr<Backend> make_sqlite_backend(const std::string& db_file, bool synchronous_full);
// `conninfo`: a postgresql:// URL or libpq key=value string; empty = the PG*
// environment variables alone.
std::unique_ptr<Backend> make_postgres_backend(const std::string& conninfo);

}  // namespace mmfuse::store
