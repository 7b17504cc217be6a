// The SQLite catalogue of an index folder: one row per indexed item (image file
// or text), the folder's settings (model, dimension, index kind, generation),
// and the embedding cache keyed by (model fingerprint, content hash).
//
// The database runs in WAL mode so readers (search) never block on the writer
// (index add); writers are serialised by IndexStore's lock file.
// Thread-safety: one Catalog per thread.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "io/sqlite_statement.h"

namespace mmfuse {

struct ItemRecord {
  int64_t id = 0;
  std::string type;      // "image" or "text"
  std::string path;      // absolute file path (image) or the text's key (id or FILE:LINE)
  std::string text;      // the text (text items only)
  std::string hash;      // hex SHA-256 of the content
  int64_t size = 0;      // bytes
  int64_t mtime = 0;     // ns since the epoch (images)
  std::string added_at;  // ISO 8601 UTC
  std::string caption;   // generated caption (image items indexed with a caption model), or ""
};

class Catalog {
 public:
  // Opens (creating if `create`) the database file. Throws Error(not_found) when
  // it does not exist and create is false.
  Catalog(const std::filesystem::path& file, bool create);
  // Opens a published snapshot (IndexStore::publish) read-only as immutable: no
  // locks, no -wal/-shm files, so it works on a read-only volume and on a copy
  // synced from object storage. The file must never change while open.
  struct Snapshot {};
  Catalog(const std::filesystem::path& file, Snapshot);
  ~Catalog();
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  const std::filesystem::path& file() const { return file_; }
  sqlite3* db() { return db_; }
  void exec(const char* sql);
  void create_schema();
  bool has_schema();

  void begin_read();  // a snapshot for a sequence of reads
  void commit();
  void rollback();  // never throws

  std::optional<std::string> meta(const std::string& key);
  void set_meta(const std::string& key, const std::string& value);

  std::optional<ItemRecord> item_by_path(const std::string& type, const std::string& path);
  std::optional<ItemRecord> item_by_hash(const std::string& type, const std::string& hash);
  std::optional<ItemRecord> item_by_id(int64_t id);
  // Items of `type` ("" = all) whose path is `prefix` or lies under it ("" = all).
  std::vector<ItemRecord> items(const std::string& type, const std::string& prefix = "");
  // Returns the new id (never reused); a non-empty caption is stored with the row.
  int64_t insert_item(const ItemRecord& item);
  void delete_item(int64_t id);  // its caption goes with it
  void set_caption(int64_t id, const std::string& caption);
  void touch_item(int64_t id, int64_t size, int64_t mtime);
  size_t count(const std::string& type);

  // Captions: table `captions` (item_id, caption) and its FTS5 index
  // `captions_fts` (porter stemming over unicode61 words), kept in step by
  // triggers, so a caption is written, replaced and removed in the transaction
  // of its item. Folders written before captions existed get both tables the
  // next time a writer opens them; readers of such folders see no captions.
  bool has_captions();
  // Ids of items whose caption matches any word of `query` (see
  // caption_query_terms), best first by FTS5's BM25, at most `limit`.
  std::vector<int64_t> caption_matches(const std::string& query, size_t limit);

  // Writes a new database at `out` holding this catalogue's meta, items and
  // captions (not the embedding cache, which only writers need) in rollback-journal
  // mode, fsynced: what a read replica opens as a Snapshot. `out` must not exist.
  void write_snapshot(const std::filesystem::path& out);

  // Embedding cache: dim floats per (model, hash).
  bool get_embedding(const std::string& model, const std::string& hash, float* out, size_t dim);
  void put_embedding(const std::string& model, const std::string& hash, const float* v, size_t dim);
  size_t cache_size();
  // Ids and vectors (n * dim floats) of every item of `type`, from the cache.
  void item_vectors(const std::string& type, const std::string& model, size_t dim,
                    std::vector<int64_t>* ids, std::vector<float>* vectors);

 private:
  std::filesystem::path file_;
  sqlite3* db_ = nullptr;
  bool captions_table_ = false;  // whether this database has the captions table (checked at open)
  std::string item_select_;      // SELECT of the ItemRecord columns, with or without captions
  void refresh_caption_columns();
};

// The words of a search text as an FTS5 query: runs of letters and digits
// (ASCII lower-cased; non-ASCII bytes kept as word characters), common English
// function words and one-letter words dropped, each word quoted, joined by OR.
// "" when no word is left (then nothing matches).
std::string caption_query_terms(const std::string& text);

// Write transaction (BEGIN IMMEDIATE) on the catalogue that rolls back unless committed.
class WriteTransaction : public SqlTransaction {
 public:
  explicit WriteTransaction(Catalog& c) : SqlTransaction(c.db(), true) {}
};

}  // namespace mmfuse
