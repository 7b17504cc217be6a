// SQLite catalogue: schema, item rows and the embedding cache (see catalog.h).
#include "index/catalog.h"

#include <cstring>

#include "core/utc_time.h"
#include "mmfuse/error.h"

namespace mmfuse {

namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  type TEXT NOT NULL CHECK(type IN ('image', 'text')),
  path TEXT NOT NULL,
  text TEXT,
  hash TEXT NOT NULL,
  size INTEGER NOT NULL,
  mtime INTEGER NOT NULL,
  added_at TEXT NOT NULL,
  UNIQUE(type, path));
CREATE INDEX IF NOT EXISTS items_by_hash ON items(type, hash);
CREATE TABLE IF NOT EXISTS embeddings(
  model TEXT NOT NULL, hash TEXT NOT NULL, vector BLOB NOT NULL,
  PRIMARY KEY(model, hash)) WITHOUT ROWID;
)sql";

ItemRecord read_item(const SqlStatement& s) {
  ItemRecord r;
  r.id = s.i64(0);
  r.type = s.text(1);
  r.path = s.text(2);
  r.text = s.text(3);
  r.hash = s.text(4);
  r.size = s.i64(5);
  r.mtime = s.i64(6);
  r.added_at = s.text(7);
  return r;
}

constexpr const char* kItemColumns =
    "SELECT id, type, path, text, hash, size, mtime, added_at FROM items ";

}  // namespace

Catalog::Catalog(const std::filesystem::path& file, bool create) : file_(file) {
  if (!create && !std::filesystem::exists(file))
    throw_error(ErrorKind::not_found,
                file.string() + ": no index catalogue here (run `mmfuse index add` first)");
  const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(file.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw_error(ErrorKind::bad_input, file.string() + ": cannot open the catalogue: " + msg);
  }
  sqlite3_busy_timeout(db_, 10000);
  try {
    // WAL: readers keep their snapshot while a writer commits. FULL: a commit is
    // on disk when COMMIT returns (the index file it names is already fsynced).
    exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
  } catch (const Error& e) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw_error(ErrorKind::bad_input,
                file.string() + ": not a usable SQLite catalogue (" + e.what() + ")");
  }
}

Catalog::~Catalog() {
  sqlite3_close(db_);
}

void Catalog::exec(const char* sql) {
  sql_exec(db_, sql);
}

void Catalog::create_schema() {
  exec(kSchema);
}

bool Catalog::has_schema() {
  SqlStatement s(db_,
                 "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN "
                 "('meta','items','embeddings')");
  s.step();
  return s.i64(0) == 3;
}

void Catalog::begin_read() {
  exec("BEGIN DEFERRED");
}
void Catalog::commit() {
  exec("COMMIT");
}
void Catalog::rollback() {
  sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

std::optional<std::string> Catalog::meta(const std::string& key) {
  SqlStatement s(db_, "SELECT value FROM meta WHERE key = ?");
  s.bind(1, key);
  if (!s.step()) return std::nullopt;
  return s.text(0);
}

void Catalog::set_meta(const std::string& key, const std::string& value) {
  SqlStatement(db_,
               "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = "
               "excluded.value")
      .bind(1, key)
      .bind(2, value)
      .run();
}

std::optional<ItemRecord> Catalog::item_by_path(const std::string& type, const std::string& path) {
  SqlStatement s(db_, (std::string(kItemColumns) + "WHERE type = ? AND path = ?").c_str());
  s.bind(1, type).bind(2, path);
  if (!s.step()) return std::nullopt;
  return read_item(s);
}

std::optional<ItemRecord> Catalog::item_by_hash(const std::string& type, const std::string& hash) {
  SqlStatement s(db_, (std::string(kItemColumns) + "WHERE type = ? AND hash = ? LIMIT 1").c_str());
  s.bind(1, type).bind(2, hash);
  if (!s.step()) return std::nullopt;
  return read_item(s);
}

std::optional<ItemRecord> Catalog::item_by_id(int64_t id) {
  SqlStatement s(db_, (std::string(kItemColumns) + "WHERE id = ?").c_str());
  s.bind(1, id);
  if (!s.step()) return std::nullopt;
  return read_item(s);
}

std::vector<ItemRecord> Catalog::items(const std::string& type, const std::string& prefix) {
  // Prefix match on whole path components: "/a/b" covers "/a/b" and "/a/b/...", not "/a/bc".
  std::string dir = prefix;
  if (!dir.empty() && dir.back() != '/') dir.push_back('/');
  SqlStatement s(db_,
                 (std::string(kItemColumns) + "WHERE (?1 = '' OR type = ?1) AND (?2 = '' OR path "
                                              "= ?2 OR substr(path, 1, length(?3)) = ?3) "
                                              "ORDER BY id")
                     .c_str());
  s.bind(1, type).bind(2, prefix).bind(3, dir);
  std::vector<ItemRecord> out;
  while (s.step()) out.push_back(read_item(s));
  return out;
}

int64_t Catalog::insert_item(const ItemRecord& item) {
  SqlStatement s(
      db_,
      "INSERT INTO items(type, path, text, hash, size, mtime, added_at) VALUES(?, ?, ?, ?, "
      "?, ?, ?)");
  s.bind(1, item.type).bind(2, item.path).bind(3, item.text).bind(4, item.hash);
  s.bind(5, item.size)
      .bind(6, item.mtime)
      .bind(7, item.added_at.empty() ? iso8601_utc_seconds(unix_time_ms()) : item.added_at);
  s.run();
  return sqlite3_last_insert_rowid(db_);
}

void Catalog::delete_item(int64_t id) {
  SqlStatement(db_, "DELETE FROM items WHERE id = ?").bind(1, id).run();
}

void Catalog::touch_item(int64_t id, int64_t size, int64_t mtime) {
  SqlStatement(db_, "UPDATE items SET size = ?, mtime = ? WHERE id = ?")
      .bind(1, size)
      .bind(2, mtime)
      .bind(3, id)
      .run();
}

size_t Catalog::count(const std::string& type) {
  SqlStatement s(db_, "SELECT count(*) FROM items WHERE ?1 = '' OR type = ?1");
  s.bind(1, type);
  s.step();
  return static_cast<size_t>(s.i64(0));
}

bool Catalog::get_embedding(const std::string& model, const std::string& hash, float* out,
                            size_t dim) {
  SqlStatement s(db_, "SELECT vector FROM embeddings WHERE model = ? AND hash = ?");
  s.bind(1, model).bind(2, hash);
  if (!s.step()) return false;
  size_t bytes = 0;
  const void* p = s.blob(0, &bytes);
  if (bytes != dim * sizeof(float)) return false;  // a stale entry of another size: recompute
  std::memcpy(out, p, bytes);
  return true;
}

void Catalog::put_embedding(const std::string& model, const std::string& hash, const float* v,
                            size_t dim) {
  SqlStatement(db_, "INSERT OR REPLACE INTO embeddings(model, hash, vector) VALUES(?, ?, ?)")
      .bind(1, model)
      .bind(2, hash)
      .bind_blob(3, v, dim * sizeof(float))
      .run();
}

size_t Catalog::cache_size() {
  SqlStatement s(db_, "SELECT count(*) FROM embeddings");
  s.step();
  return static_cast<size_t>(s.i64(0));
}

void Catalog::item_vectors(const std::string& type, const std::string& model, size_t dim,
                           std::vector<int64_t>* ids, std::vector<float>* vectors) {
  SqlStatement s(db_,
                 "SELECT items.id, embeddings.vector FROM items JOIN embeddings "
                 "ON embeddings.model = ?2 AND embeddings.hash = items.hash WHERE items.type = ?1 "
                 "ORDER BY items.id");
  s.bind(1, type).bind(2, model);
  ids->clear();
  vectors->clear();
  while (s.step()) {
    size_t bytes = 0;
    const auto* p = static_cast<const float*>(s.blob(1, &bytes));
    if (bytes != dim * sizeof(float))
      throw_error(ErrorKind::internal, file_.string() + ": cached vector of item " +
                                           std::to_string(s.i64(0)) + " has " +
                                           std::to_string(bytes) + " bytes, expected " +
                                           std::to_string(dim * sizeof(float)));
    ids->push_back(s.i64(0));
    vectors->insert(vectors->end(), p, p + dim);
  }
}

}  // namespace mmfuse
