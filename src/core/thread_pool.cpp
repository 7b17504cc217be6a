#include "core/thread_pool.h"

#include <cblas.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "mmfuse/error.h"

namespace mmfuse {

struct ThreadPool::Impl {
  explicit Impl(int threads);
  ~Impl();
  int size() const { return static_cast<int>(workers.size()) + 1; }
  void parallel_for(size_t n, const std::function<void(size_t, size_t, int)>& fn);
  void worker_loop(int index);
  void run_job(int index);
  bool enter_loop(unsigned long loop);

  static constexpr uint64_t kClosed = uint64_t{1} << 31;
  static constexpr uint64_t kInsideMask = kClosed - 1;

  std::vector<std::thread> workers;
  // Held for a whole loop: callers on other threads wait their turn, so one
  // loop at a time owns the workers and the job fields below.
  std::mutex run_mutex;
  std::mutex mutex;
  std::condition_variable wake;
  std::condition_variable done;
  const std::function<void(size_t, size_t, int)>* job = nullptr;
  size_t job_n = 0;
  size_t job_chunks = 0;
  std::atomic<size_t> next_chunk{0};
  // Workers sleep on a condition variable between loops, after a short spin:
  // a decoder runs hundreds of small loops per token, each a few hundred
  // microseconds apart at most, and a futex wake-up costs tens of them.
  // (Spinning without a bound was measured 10-30% slower whenever anything
  // else shares the cores.)
  //
  // A worker joins a loop only while it is open: `entry` holds the loop's
  // number (high 32 bits), a closed flag and how many workers are inside.
  // The caller closes the loop once every chunk is claimed and waits only for
  // the workers inside, not for one that has not woken yet (on a loaded
  // machine that wake-up can take a scheduler tick, ~100 us or more, per loop).
  std::atomic<uint64_t> entry{0};
  std::atomic<unsigned long> generation{0};
  std::atomic<bool> stop{false};
  std::exception_ptr error;
};

namespace {
// How long a thread polls before it sleeps, waiting for the next loop (a
// worker) or for the others to finish theirs (the caller).
constexpr auto kSpin = std::chrono::microseconds(200);

template <typename Ready>
bool spin_until(Ready ready) {
  const auto end = std::chrono::steady_clock::now() + kSpin;
  do {
    for (int i = 0; i < 64; ++i) {
      if (ready()) return true;
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
    }
  } while (std::chrono::steady_clock::now() < end);
  return ready();
}

// The pool whose task the current thread is running, and its worker index:
// a loop started from inside a task of the same pool runs inline.
thread_local const void* t_pool = nullptr;
thread_local int t_worker = 0;

// Marks the calling thread as worker 0 of `pool` for the duration of a loop.
class CallerScope {
 public:
  explicit CallerScope(const void* pool) : saved_pool_(t_pool), saved_worker_(t_worker) {
    t_pool = pool;
    t_worker = 0;
  }
  ~CallerScope() {
    t_pool = saved_pool_;
    t_worker = saved_worker_;
  }
  CallerScope(const CallerScope&) = delete;
  CallerScope& operator=(const CallerScope&) = delete;

 private:
  const void* saved_pool_;
  int saved_worker_;
};
}  // namespace

ThreadPool::Impl::Impl(int threads) {
  // Keep OpenBLAS single-threaded: parallelism comes from the pools only.
  openblas_set_num_threads(1);
  for (int i = 1; i < threads; ++i) workers.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::Impl::~Impl() {
  {
    std::lock_guard<std::mutex> lock(mutex);
    stop.store(true);
  }
  wake.notify_all();
  for (auto& t : workers) t.join();
}

void ThreadPool::Impl::run_job(int index) {
  // Chunks are claimed dynamically so that a slow core does not hold everyone up.
  for (;;) {
    size_t chunk = next_chunk.fetch_add(1);
    if (chunk >= job_chunks) return;
    size_t begin = job_n * chunk / job_chunks;
    size_t end = job_n * (chunk + 1) / job_chunks;
    if (begin == end) continue;
    try {
      (*job)(begin, end, index);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex);
      if (!error) error = std::current_exception();
    }
  }
}

bool ThreadPool::Impl::enter_loop(unsigned long loop) {
  uint64_t e = entry.load();
  for (;;) {
    if ((e >> 32) != (loop & 0xffffffffu) || (e & kClosed) != 0) return false;
    if (entry.compare_exchange_weak(e, e + 1)) return true;
  }
}

void ThreadPool::Impl::worker_loop(int index) {
  t_pool = this;
  t_worker = index;
  unsigned long seen = 0;
  for (;;) {
    auto ready = [&] { return stop.load() || generation.load(std::memory_order_acquire) != seen; };
    if (!spin_until(ready)) {
      std::unique_lock<std::mutex> lock(mutex);
      wake.wait(lock, ready);
    }
    if (stop.load()) return;
    seen = generation.load(std::memory_order_acquire);
    if (!enter_loop(seen)) continue;  // closed already: the caller did the work
    run_job(index);
    const uint64_t before = entry.fetch_sub(1);
    if ((before & kInsideMask) == 1 && (before & kClosed) != 0) {
      std::lock_guard<std::mutex> lock(mutex);
      done.notify_one();
    }
  }
}

void ThreadPool::Impl::parallel_for(size_t n, const std::function<void(size_t, size_t, int)>& fn) {
  if (n == 0) return;
  if (t_pool == this) {  // nested inside one of our own tasks: the cores are busy already
    fn(0, n, t_worker);
    return;
  }
  std::lock_guard<std::mutex> turn(run_mutex);
  CallerScope scope(this);
  if (workers.empty() || n == 1) {
    fn(0, n, 0);
    return;
  }
  size_t chunks = std::min(n, static_cast<size_t>(size()));
  {
    std::lock_guard<std::mutex> lock(mutex);
    job = &fn;
    job_n = n;
    job_chunks = chunks;
    next_chunk.store(0);
    error = nullptr;
    const unsigned long loop = generation.load() + 1;
    entry.store(static_cast<uint64_t>(loop & 0xffffffffu) << 32);  // open, nobody inside
    generation.store(loop, std::memory_order_release);
  }
  wake.notify_all();
  run_job(0);
  // Every chunk is claimed: late workers stay out, those inside finish theirs.
  const auto inside = [&] { return (entry.load() & kInsideMask) != 0; };
  if ((entry.fetch_or(kClosed) & kInsideMask) != 0 && !spin_until([&] { return !inside(); })) {
    std::unique_lock<std::mutex> lock(mutex);
    done.wait(lock, [&] { return !inside(); });
  }
  std::lock_guard<std::mutex> lock(mutex);
  job = nullptr;
  if (error) std::rethrow_exception(std::exchange(error, nullptr));
}

ThreadPool::ThreadPool(int threads) {
  MMFUSE_CHECK(
      threads >= 0 && threads <= 1024, bad_input,
      "thread count must be between 0 (all cores) and 1024, got " + std::to_string(threads));
  impl_ = std::make_unique<Impl>(threads == 0 ? hardware_threads() : threads);
}

ThreadPool::~ThreadPool() = default;

int ThreadPool::size() const {
  return impl_->size();
}

void ThreadPool::parallel_for(size_t n, const std::function<void(size_t, size_t, int)>& fn) {
  impl_->parallel_for(n, fn);
}

void ThreadPool::parallel_tasks(size_t tasks, const std::function<void(size_t, int)>& fn) {
  if (tasks == 0) return;
  if (size() == 1 || tasks == 1 || t_pool == impl_.get()) {
    const int worker = t_pool == impl_.get() ? t_worker : 0;
    for (size_t t = 0; t < tasks; ++t) fn(t, worker);
    return;
  }
  std::atomic<size_t> next{0};
  parallel_for(static_cast<size_t>(size()), [&](size_t, size_t, int worker) {
    for (size_t t = next.fetch_add(1); t < tasks; t = next.fetch_add(1)) fn(t, worker);
  });
}

int hardware_threads() {
  // The cores this process may run on (taskset, cgroup cpusets), not the machine's.
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

}  // namespace mmfuse
