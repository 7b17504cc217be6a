// SQLite catalogue: schema, item rows and the embedding cache (see catalog.h).
#include "index/catalog.h"

#include <cctype>
#include <cstring>
#include <set>

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

// Captions, added after format 1 shipped: IF NOT EXISTS makes this the
// migration too (a writer opening an older folder creates them, in one
// transaction). External-content FTS5 over `captions`, kept in step by
// triggers, so every write path (insert, upsert, item delete) updates the
// keyword index in the same transaction.
constexpr const char* kCaptionSchema = R"sql(
CREATE TABLE IF NOT EXISTS captions(item_id INTEGER PRIMARY KEY, caption TEXT NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS captions_fts USING fts5(
  caption, content='captions', content_rowid='item_id', tokenize='porter unicode61');
CREATE TRIGGER IF NOT EXISTS captions_fts_insert AFTER INSERT ON captions BEGIN
  INSERT INTO captions_fts(rowid, caption) VALUES(new.item_id, new.caption);
END;
CREATE TRIGGER IF NOT EXISTS captions_fts_delete AFTER DELETE ON captions BEGIN
  INSERT INTO captions_fts(captions_fts, rowid, caption) VALUES('delete', old.item_id, old.caption);
END;
CREATE TRIGGER IF NOT EXISTS captions_fts_update AFTER UPDATE ON captions BEGIN
  INSERT INTO captions_fts(captions_fts, rowid, caption) VALUES('delete', old.item_id, old.caption);
  INSERT INTO captions_fts(rowid, caption) VALUES(new.item_id, new.caption);
END;
CREATE TRIGGER IF NOT EXISTS items_delete_caption AFTER DELETE ON items BEGIN
  DELETE FROM captions WHERE item_id = old.id;
END;
)sql";

// Words too common in captions and queries to say anything ("a photo of a dog").
const std::set<std::string>& stop_words() {
  static const std::set<std::string> words = {
      "an",   "and", "are",   "as",   "at", "be",   "by",    "for",   "from",
      "has",  "in",  "into",  "is",   "it", "its",  "of",    "on",    "or",
      "that", "the", "there", "this", "to", "with", "photo", "image", "picture"};
  return words;
}

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
  r.caption = s.text(8);
  return r;
}

// Closes a half-opened connection and throws (the constructors' failures).
[[noreturn]] void close_and_throw(sqlite3*& db, ErrorKind kind, const std::string& message) {
  sqlite3_close(db);
  db = nullptr;
  throw_error(kind, message);
}

}  // namespace

Catalog::Catalog(const std::filesystem::path& file, bool create) : file_(file) {
  if (!create && !std::filesystem::exists(file))
    throw_error(ErrorKind::not_found,
                file.string() + ": no index catalogue here (run `mmfuse index add` first)");
  const int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(file.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    close_and_throw(db_, ErrorKind::bad_input,
                    file.string() + ": cannot open the catalogue: " +
                        (db_ ? sqlite3_errmsg(db_) : "out of memory"));
  }
  sqlite3_busy_timeout(db_, 10000);
  try {
    // WAL: readers keep their snapshot while a writer commits. FULL: a commit is
    // on disk when COMMIT returns (the index file it names is already fsynced).
    exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
    refresh_caption_columns();
  } catch (const Error& e) {
    close_and_throw(db_, ErrorKind::bad_input,
                    file.string() + ": not a usable SQLite catalogue (" + e.what() + ")");
  }
}

namespace {

// A file: URI for sqlite3_open_v2 (the characters URIs reserve are escaped).
std::string file_uri(const std::filesystem::path& file) {
  std::string uri = "file:";
  for (unsigned char c : file.string()) {
    if (c == '%' || c == '?' || c == '#' || c < 0x20 || c >= 0x7f) {
      static const char* hex = "0123456789ABCDEF";
      uri += '%';
      uri += hex[c >> 4];
      uri += hex[c & 15];
    } else {
      uri += static_cast<char>(c);
    }
  }
  return uri;
}

}  // namespace

Catalog::Catalog(const std::filesystem::path& file, Snapshot) : file_(file) {
  if (!std::filesystem::exists(file))
    throw_error(ErrorKind::not_found, file.string() + ": no published index catalogue here");
  const std::string uri = file_uri(file) + "?immutable=1";
  if (sqlite3_open_v2(uri.c_str(), &db_,
                      SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    close_and_throw(db_, ErrorKind::not_found,
                    file.string() + ": cannot open the published catalogue: " +
                        (db_ ? sqlite3_errmsg(db_) : "out of memory"));
  }
  try {
    refresh_caption_columns();
  } catch (const Error& e) {
    close_and_throw(db_, ErrorKind::bad_input,
                    file.string() + ": not a usable SQLite catalogue (" + e.what() + ")");
  }
}

void Catalog::write_snapshot(const std::filesystem::path& out) {
  MMFUSE_CHECK(!std::filesystem::exists(out), internal, out.string() + ": already exists");
  Catalog snap(out, true);
  // Immutable readers must not need a -wal file: no WAL from the start.
  snap.exec("PRAGMA journal_mode=DELETE");
  snap.create_schema();
  SqlStatement attach(snap.db(), "ATTACH DATABASE ? AS live");
  attach.bind(1, file_.string()).run();
  {
    SqlTransaction tx(snap.db(), false);  // deferred: no write lock on the live catalogue
    snap.exec("INSERT INTO meta SELECT * FROM live.meta");
    snap.exec(
        "INSERT INTO items(id, type, path, text, hash, size, mtime, added_at) SELECT id, type, "
        "path, text, hash, size, mtime, added_at FROM live.items");
    if (has_captions()) snap.exec("INSERT INTO captions SELECT * FROM live.captions");
    tx.commit();
  }
  snap.exec("DETACH DATABASE live");
}

void Catalog::refresh_caption_columns() {
  SqlStatement s(db_,
                 "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'captions'");
  s.step();
  captions_table_ = s.i64(0) == 1;
  item_select_ =
      captions_table_
          ? "SELECT items.id, items.type, items.path, items.text, items.hash, items.size, "
            "items.mtime, items.added_at, captions.caption FROM items LEFT JOIN captions "
            "ON captions.item_id = items.id "
          : "SELECT id, type, path, text, hash, size, mtime, added_at, NULL FROM items ";
}

Catalog::~Catalog() {
  sqlite3_close(db_);
}

void Catalog::exec(const char* sql) {
  sql_exec(db_, sql);
}

void Catalog::create_schema() {
  exec(kSchema);
  SqlTransaction tx(db_, true);
  exec(kCaptionSchema);
  tx.commit();
  refresh_caption_columns();
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
  SqlStatement s(db_, (item_select_ + "WHERE type = ? AND path = ?").c_str());
  s.bind(1, type).bind(2, path);
  if (!s.step()) return std::nullopt;
  return read_item(s);
}

std::optional<ItemRecord> Catalog::item_by_hash(const std::string& type, const std::string& hash) {
  SqlStatement s(db_, (item_select_ + "WHERE type = ? AND hash = ? LIMIT 1").c_str());
  s.bind(1, type).bind(2, hash);
  if (!s.step()) return std::nullopt;
  return read_item(s);
}

std::optional<ItemRecord> Catalog::item_by_id(int64_t id) {
  SqlStatement s(db_, (item_select_ + "WHERE id = ?").c_str());
  s.bind(1, id);
  if (!s.step()) return std::nullopt;
  return read_item(s);
}

std::vector<ItemRecord> Catalog::items(const std::string& type, const std::string& prefix) {
  // Prefix match on whole path components: "/a/b" covers "/a/b" and "/a/b/...", not "/a/bc".
  std::string dir = prefix;
  if (!dir.empty() && dir.back() != '/') dir.push_back('/');
  SqlStatement s(db_, (item_select_ + "WHERE (?1 = '' OR type = ?1) AND (?2 = '' OR path "
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
  const int64_t id = sqlite3_last_insert_rowid(db_);
  if (!item.caption.empty()) set_caption(id, item.caption);
  return id;
}

void Catalog::delete_item(int64_t id) {
  SqlStatement(db_, "DELETE FROM items WHERE id = ?")
      .bind(1, id)
      .run();  // trigger drops the caption
}

void Catalog::set_caption(int64_t id, const std::string& caption) {
  MMFUSE_CHECK(captions_table_, internal, file_.string() + ": no captions table (reader?)");
  if (caption.empty()) {
    SqlStatement(db_, "DELETE FROM captions WHERE item_id = ?").bind(1, id).run();
    return;
  }
  SqlStatement(db_,
               "INSERT INTO captions(item_id, caption) VALUES(?, ?) ON CONFLICT(item_id) DO UPDATE "
               "SET caption = excluded.caption")
      .bind(1, id)
      .bind(2, caption)
      .run();
}

bool Catalog::has_captions() {
  if (!captions_table_) return false;
  SqlStatement s(db_, "SELECT EXISTS(SELECT 1 FROM captions)");
  s.step();
  return s.i64(0) != 0;
}

std::vector<int64_t> Catalog::caption_matches(const std::string& query, size_t limit) {
  std::vector<int64_t> ids;
  const std::string terms = caption_query_terms(query);
  if (!captions_table_ || terms.empty() || limit == 0) return ids;
  // rank is bm25(); rowid breaks ties so equal matches come out in a fixed order.
  SqlStatement s(db_,
                 "SELECT rowid FROM captions_fts WHERE captions_fts MATCH ? ORDER BY rank, rowid "
                 "LIMIT ?");
  s.bind(1, terms).bind(2, static_cast<int64_t>(limit));
  while (s.step()) ids.push_back(s.i64(0));
  return ids;
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

std::string caption_query_terms(const std::string& text) {
  std::string out, word;
  std::set<std::string> seen;
  auto flush = [&] {
    if (word.size() > 1 && !stop_words().count(word) && seen.insert(word).second) {
      if (!out.empty()) out += " OR ";
      out += "\"" + word + "\"";
    }
    word.clear();
  };
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x80 || std::isalnum(c))
      word.push_back(static_cast<char>(c < 0x80 ? std::tolower(c) : c));
    else
      flush();
  }
  flush();
  return out;
}

}  // namespace mmfuse
