// mmfuse::ThreadPool: the cores a model computes with (its execution context).
//
// Every model owns a pool or is handed one when it is opened; nothing in
// mmfuse reconfigures a process-wide pool. A pool of N threads keeps exactly N
// cores busy while it runs a loop (the calling thread is one of them; BLAS and
// oneDNN calls made from inside a loop are single-threaded).
//
// Thread-safety: any number of threads may call parallel_for / parallel_tasks
// on the same pool at once. Loops from different callers run one after
// another (each gets all the pool's cores); a loop started from inside a task
// of the same pool runs inline on that task's thread. Results never depend on
// who else is using the pool.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "mmfuse/export.h"

namespace mmfuse {

class MMFUSE_API ThreadPool {
 public:
  // threads = total number of cores used, the calling thread included;
  // 0 = all cores of the machine (hardware_threads()). Throws mmfuse::Error
  // (bad_input) outside [0, 1024].
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // The number of cores a loop uses (>= 1).
  int size() const;

  // Splits [0, n) into at most size() contiguous chunks and runs
  // fn(begin, end, worker_index) on each, worker_index in [0, size()).
  // Returns when all chunks are done; rethrows the first exception a chunk threw.
  void parallel_for(size_t n, const std::function<void(size_t, size_t, int)>& fn);

  // Runs fn(task_index, worker_index) for every task in [0, tasks), handing
  // tasks out dynamically (for uneven work such as attention heads).
  void parallel_tasks(size_t tasks, const std::function<void(size_t, int)>& fn);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The number of cores this process may use (at least 1).
MMFUSE_API int hardware_threads();

}  // namespace mmfuse
