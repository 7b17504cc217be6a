// The store's SQLite helpers: the shared statement/transaction wrappers
// (io/sqlite_statement.h) under the store's short names, and JSON column text.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "io/sqlite_statement.h"

namespace mmfuse::store {

using Stmt = SqlStatement;
using Transaction = SqlTransaction;

// Compact JSON text; invalid UTF-8 in strings becomes U+FFFD instead of throwing (a
// detector message with a Latin-1 file name must not cost the whole inspection).
inline std::string json_text(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace mmfuse::store
