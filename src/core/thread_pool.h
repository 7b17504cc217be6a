// The thread pool is part of the public API (include/mmfuse/thread_pool.h):
// each model computes on the pool it owns or was handed. Internal code
// includes it through this header.
#pragma once

#include <memory>

#include "mmfuse/thread_pool.h"

namespace mmfuse {

// The pool a model computes with: `pool` when one is handed in, otherwise a
// new pool of its own with all cores.
inline std::shared_ptr<ThreadPool> pool_or_own(std::shared_ptr<ThreadPool> pool) {
  return pool ? std::move(pool) : std::make_shared<ThreadPool>(0);
}

}  // namespace mmfuse
