// The change sequence edge -> centre forwarding reads (edge_sync.cpp): every write
// transaction that changes an inspection, an alarm or a round stamps those rows with
// next_rev(). Called last in the transaction: the counter's row lock is then held only
// until the commit, and transactions commit in rev order on every back-end (PostgreSQL
// writers queue on that row), so "every row with rev <= R" is complete once R is
// visible. Lock order on PostgreSQL (no deadlock between writers): alarm rows, then
// the counter, then the round's row. Internal to src/store.
#pragma once

#include <cstdint>

#include "mmfuse/error.h"
#include "store/sql_connection.h"

namespace mmfuse::store {

inline int64_t next_rev(SqlConnection& writer) {
  Stmt s(writer, "UPDATE sync_counter SET rev = rev + 1 WHERE id = 1 RETURNING rev");
  MMFUSE_ASSERT(s.step());
  const int64_t rev = s.i64(0);
  s.run();  // to completion (SQLite keeps an unfinished statement open)
  return rev;
}

}  // namespace mmfuse::store
