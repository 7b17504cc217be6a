#include "core/thread_pool.h"

#include <cblas.h>

#include <memory>

#include "mmfuse/error.h"

namespace mmfuse {

ThreadPool::ThreadPool(int threads) {
  MMFUSE_CHECK(threads >= 1, bad_input, "thread count must be at least 1");
  // Keep OpenBLAS single-threaded: parallelism comes from this pool only.
  openblas_set_num_threads(1);
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_job(int index) {
  // Chunks are claimed dynamically so that a slow core does not hold everyone up.
  for (;;) {
    size_t chunk = next_chunk_.fetch_add(1);
    if (chunk >= job_chunks_) return;
    size_t begin = job_n_ * chunk / job_chunks_;
    size_t end = job_n_ * (chunk + 1) / job_chunks_;
    if (begin == end) continue;
    try {
      (*job_)(begin, end, index);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
  }
}

void ThreadPool::worker_loop(int index) {
  unsigned long seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_.load() != seen; });
      if (stop_) return;
      seen = generation_.load();
    }
    run_job(index);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mutex_);
      done_.notify_one();
    }
  }
}

void ThreadPool::parallel_for(size_t n, const std::function<void(size_t, size_t, int)>& fn) {
  if (n == 0) return;
  if (workers_.empty() || n == 1) {
    fn(0, n, 0);
    return;
  }
  size_t chunks = std::min(n, static_cast<size_t>(size()));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    job_n_ = n;
    job_chunks_ = chunks;
    next_chunk_.store(0);
    pending_.store(workers_.size());
    error_ = nullptr;
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  run_job(0);
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return pending_.load() == 0; });
  job_ = nullptr;
  if (error_) std::rethrow_exception(error_);
}

void ThreadPool::parallel_tasks(size_t tasks, const std::function<void(size_t, int)>& fn) {
  if (tasks == 0) return;
  if (workers_.empty() || tasks == 1) {
    for (size_t t = 0; t < tasks; ++t) fn(t, 0);
    return;
  }
  std::atomic<size_t> next{0};
  parallel_for(static_cast<size_t>(size()), [&](size_t, size_t, int worker) {
    for (size_t t = next.fetch_add(1); t < tasks; t = next.fetch_add(1)) fn(t, worker);
  });
}

namespace {
std::mutex g_default_mutex;
std::unique_ptr<ThreadPool> g_default_pool;
int g_default_threads = 0;
}  // namespace

int hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

void set_default_threads(int threads) {
  MMFUSE_CHECK(threads >= 1 && threads <= 1024, bad_input,
               "--threads must be between 1 and 1024, got " + std::to_string(threads));
  std::lock_guard<std::mutex> lock(g_default_mutex);
  if (g_default_pool && g_default_pool->size() == threads) return;
  g_default_pool.reset();
  g_default_threads = threads;
}

ThreadPool& default_pool() {
  std::lock_guard<std::mutex> lock(g_default_mutex);
  if (!g_default_pool) {
    g_default_pool =
        std::make_unique<ThreadPool>(g_default_threads > 0 ? g_default_threads : hardware_threads());
  }
  return *g_default_pool;
}

}  // namespace mmfuse
