// `--store URL` / `--data DIR` -> StoreLocation (see store.h).
#include <filesystem>

#include "mmfuse/error.h"
#include "store/store.h"

namespace fs = std::filesystem;

namespace mmfuse::store {

namespace {

bool starts_with(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

bool looks_like_db_file(const fs::path& p) {
  std::error_code ec;
  if (fs::is_directory(p, ec)) return false;
  if (fs::is_regular_file(p, ec)) return true;
  const std::string ext = p.extension().string();
  return ext == ".db" || ext == ".sqlite" || ext == ".sqlite3";
}

}  // namespace

std::string redact_store_url(const std::string& url) {
  // scheme://user:password@host -> scheme://user:***@host
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  const size_t at = url.find('@', scheme + 3);
  if (at == std::string::npos) return url;
  const size_t colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

StoreLocation sqlite_location(const fs::path& data_dir) {
  StoreLocation l;
  l.kind = StoreKind::sqlite;
  l.data_dir = data_dir;
  l.db_file = data_dir / "mmfuse.db";
  return l;
}

StoreLocation parse_store_url(const std::string& url) {
  StoreLocation l;
  if (starts_with(url, "postgresql://") || starts_with(url, "postgres://")) {
    l.kind = StoreKind::postgres;
    l.conninfo = url;
    return l;
  }
  if (url == "postgresql:" || url == "postgres:") {
    l.kind = StoreKind::postgres;  // host, port, user, password, database from PG*
    return l;
  }
  if (starts_with(url, "sqlite:")) {
    std::string path = url.substr(7);
    if (starts_with(path, "//")) path = path.substr(2);  // sqlite:///abs -> /abs
    MMFUSE_CHECK(!path.empty(), bad_input, "--store " + url + ": no database path after sqlite:");
    const fs::path p(path);
    if (looks_like_db_file(p)) {
      l.db_file = p;
      l.data_dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
    } else {
      l = sqlite_location(p);
    }
    return l;
  }
  throw_error(ErrorKind::bad_input,
              "--store " + redact_store_url(url) +
                  ": expected sqlite:///path/store.db, postgresql://user@host:port/db or "
                  "postgresql: (PG* environment variables)");
}

}  // namespace mmfuse::store
