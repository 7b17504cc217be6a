// A fixed pool of worker threads that runs parallel loops. mmfuse owns the cores
// through this pool alone: BLAS calls made from inside a task are single-threaded,
// so `threads = N` means exactly N busy cores.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mmfuse {

class ThreadPool {
 public:
  // threads = total number of cores used, including the calling thread (>= 1).
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Splits [0, n) into at most size() contiguous chunks and runs
  // fn(begin, end, worker_index) on each, the calling thread taking chunk 0.
  // Returns when all chunks are done; rethrows the first exception a chunk threw.
  // Not re-entrant: call it from one thread at a time.
  void parallel_for(size_t n, const std::function<void(size_t, size_t, int)>& fn);

  // Runs fn(task_index, worker_index) for every task in [0, tasks), handing tasks
  // out dynamically (for uneven work such as attention heads).
  void parallel_tasks(size_t tasks, const std::function<void(size_t, int)>& fn);

 private:
  void worker_loop(int index);
  void run_job(int index);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(size_t, size_t, int)>* job_ = nullptr;
  size_t job_n_ = 0;
  size_t job_chunks_ = 0;
  std::atomic<size_t> next_chunk_{0};
  // Workers sleep on a condition variable between loops. (Spinning instead was
  // measured 10-30% slower whenever anything else shares the cores.)
  std::atomic<size_t> pending_{0};
  std::atomic<unsigned long> generation_{0};
  bool stop_ = false;
  std::exception_ptr error_;
};

// The process-wide default pool, sized by set_default_threads() (default: all cores).
ThreadPool& default_pool();
void set_default_threads(int threads);
int hardware_threads();

}  // namespace mmfuse
