// The continuous-batching worker: between decode steps it prefills one
// waiting request and lets it join; every step is one LanguageModel::decode
// call for all running greedy / sampling sequences; each request's tokens are
// chosen by its own SamplingRun, exactly as generate() chooses them.
#include "generate/batch_scheduler.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "generate/sampling_run.h"
#include "mmfuse/error.h"

namespace mmfuse {

namespace {

using Clock = std::chrono::steady_clock;

struct Job {
  GenerationRequest request;
  std::promise<GenerationResult> promise;
  Clock::time_point submitted;
};

// A request in the running set: its run, its sequences' caches and logits.
struct Active {
  std::unique_ptr<Job> job;
  std::unique_ptr<SamplingRun> run;
  std::vector<std::unique_ptr<DecoderState>> states;  // per sequence; null once finished
  std::vector<float> logits;                          // sequence_count x vocab
  size_t vocab = 0;
  const LanguageModel* model = nullptr;

  size_t live() const {
    size_t n = 0;
    for (size_t i = 0; i < run->sequence_count(); ++i) n += run->finished(i) ? 0 : 1;
    return n;
  }
};

}  // namespace

struct BatchScheduler::Impl {
  Options options;
  mutable std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::unique_ptr<Job>> queue;  // guarded by mutex
  bool stopping = false;                   // guarded by mutex
  std::atomic<bool> shutdown{false};       // read by the worker between steps
  Stats stats;                             // guarded by mutex
  std::deque<std::pair<Clock::time_point, size_t>> recent_steps;  // guarded by mutex

  std::vector<std::unique_ptr<Active>> running;  // the worker's only
  std::thread worker;

  explicit Impl(Options o) : options(o) {}

  size_t running_sequences() const {
    size_t n = 0;
    for (const auto& a : running) n += a->live();
    return n;
  }

  void record_tokens(size_t tokens, bool step) {
    std::lock_guard<std::mutex> lock(mutex);
    stats.tokens_generated += tokens;
    if (!step) return;
    const auto now = Clock::now();
    recent_steps.emplace_back(now, tokens);
    while (recent_steps.size() > 32) recent_steps.pop_front();
    if (recent_steps.size() >= 2) {
      size_t total = 0;
      for (size_t i = 1; i < recent_steps.size(); ++i) total += recent_steps[i].second;
      const double seconds =
          std::chrono::duration<double>(now - recent_steps.front().first).count();
      if (seconds > 0) stats.decode_tokens_per_s = static_cast<double>(total) / seconds;
    }
  }

  // Stats first: whoever sees the future ready sees the request counted.
  void count_completed() {
    std::lock_guard<std::mutex> lock(mutex);
    ++stats.requests_completed;
  }

  void complete(Active& a) {
    GenerationResult result = a.run->result();
    count_completed();
    a.job->promise.set_value(std::move(result));
  }

  void fail(Job& job, std::exception_ptr error) {
    count_completed();
    job.promise.set_exception(error);
  }

  // Whole-request path (beam search): generate() between two steps.
  void run_whole(std::unique_ptr<Job> job) {
    try {
      GenerationResult result = generate(job->request);
      size_t tokens = 0;
      for (const auto& s : result.sequences) tokens += s.tokens.size();
      {
        std::lock_guard<std::mutex> lock(mutex);
        stats.last_ttft_ms =
            std::chrono::duration<double, std::milli>(Clock::now() - job->submitted).count();
      }
      record_tokens(tokens, false);
      count_completed();
      job->promise.set_value(std::move(result));
    } catch (...) {
      fail(*job, std::current_exception());
    }
  }

  // Prefill a greedy / sampling request and choose its first tokens; it joins
  // the running set unless it is already finished.
  void admit(std::unique_ptr<Job> job) {
    auto active = std::make_unique<Active>();
    try {
      active->run = std::make_unique<SamplingRun>(job->request);
      SamplingRun& run = *active->run;
      active->model = job->request.model;
      active->vocab = static_cast<size_t>(active->model->vocab_size());
      const size_t count = run.sequence_count();
      if (run.cancel_requested() || shutdown.load()) {
        run.cancel();
      } else {
        active->logits.resize(count * active->vocab);
        active->states.resize(count);
        active->states[0] = active->model->prefill(job->request.prompt, active->logits.data(),
                                                   job->request.adapter);
        for (size_t i = 1; i < count; ++i) {
          active->states[i] = active->states[0]->clone();
          std::copy_n(active->logits.data(), active->vocab,
                      active->logits.data() + i * active->vocab);
        }
        for (size_t i = 0; i < count; ++i)
          if (!run.finished(i))
            run.choose(i, active->logits.data() + i * active->vocab, active->vocab);
        {
          std::lock_guard<std::mutex> lock(mutex);
          stats.last_ttft_ms =
              std::chrono::duration<double, std::milli>(Clock::now() - job->submitted).count();
        }
        record_tokens(count, false);
      }
    } catch (...) {
      fail(*job, std::current_exception());
      return;
    }
    active->job = std::move(job);
    if (active->run->all_finished()) {
      complete(*active);
      return;
    }
    running.push_back(std::move(active));
  }

  // One decode call for every live sequence of every running request.
  void step() {
    for (auto& a : running)
      if (!a->run->all_finished() && (a->run->cancel_requested() || shutdown.load()))
        a->run->cancel();
    // Batch rows in running order, each request's sequences in index order.
    struct Row {
      Active* active;
      size_t seq;
    };
    std::vector<Row> rows;
    std::vector<DecoderState*> states;
    std::vector<int32_t> tokens;
    for (auto& a : running) {
      for (size_t i = 0; i < a->run->sequence_count(); ++i) {
        if (a->run->finished(i)) {
          a->states[i].reset();
          continue;
        }
        rows.push_back({a.get(), i});
        states.push_back(a->states[i].get());
        tokens.push_back(a->run->last_token(i));
      }
    }
    if (!rows.empty()) {
      // One call per model (requests of several models may share a scheduler).
      std::vector<float> logits;
      std::unordered_map<const LanguageModel*, std::vector<size_t>> by_model;
      for (size_t r = 0; r < rows.size(); ++r) by_model[rows[r].active->model].push_back(r);
      try {
        for (auto& [model, indices] : by_model) {
          const size_t vocab = static_cast<size_t>(model->vocab_size());
          std::vector<DecoderState*> batch;
          std::vector<int32_t> batch_tokens;
          for (size_t r : indices) {
            batch.push_back(states[r]);
            batch_tokens.push_back(tokens[r]);
          }
          logits.resize(indices.size() * vocab);
          model->decode(batch.data(), batch_tokens.data(), batch.size(), logits.data());
          for (size_t k = 0; k < indices.size(); ++k) {
            const Row& row = rows[indices[k]];
            std::copy_n(logits.data() + k * vocab, vocab,
                        row.active->logits.data() + row.seq * vocab);
          }
        }
      } catch (...) {
        // The model failed: every running request gets the error.
        const auto error = std::current_exception();
        for (auto& a : running) fail(*a->job, error);
        running.clear();
        return;
      }
      // Choose, request by request, each one's live sequences in index order (as generate()).
      size_t chosen = 0;
      for (auto& a : running) {
        try {
          for (size_t i = 0; i < a->run->sequence_count(); ++i) {
            if (a->states[i] == nullptr || a->run->finished(i)) continue;
            a->run->choose(i, a->logits.data() + i * a->vocab, a->vocab);
            ++chosen;
          }
        } catch (...) {
          fail(*a->job, std::current_exception());
          a->job.reset();
        }
      }
      record_tokens(chosen, true);
    }
    // Finished requests leave.
    std::vector<std::unique_ptr<Active>> still;
    for (auto& a : running) {
      if (a->job == nullptr) continue;  // failed above
      if (a->run->all_finished()) {
        complete(*a);
      } else {
        still.push_back(std::move(a));
      }
    }
    running = std::move(still);
  }

  void loop() {
    for (;;) {
      std::unique_ptr<Job> next;
      {
        std::unique_lock<std::mutex> lock(mutex);
        wake.wait(lock, [&] { return stopping || !queue.empty() || !running.empty(); });
        if (stopping) break;
        if (!queue.empty()) {
          const GenerationConfig& c = queue.front()->request.config;
          const size_t want =
              c.num_beams > 1
                  ? 0
                  : (c.do_sample ? static_cast<size_t>(std::max(1, c.num_return_sequences)) : 1);
          const size_t in_use = running_sequences();
          // A request joins when its sequences fit; one wider than max_running
          // joins an empty batch.
          if (want == 0 || in_use == 0 || in_use + want <= options.max_running) {
            next = std::move(queue.front());
            queue.pop_front();
          }
        }
        stats.queued = queue.size();
      }
      if (next) {
        if (next->request.config.num_beams > 1)
          run_whole(std::move(next));
        else
          admit(std::move(next));
      }
      if (!running.empty()) step();
      std::lock_guard<std::mutex> lock(mutex);
      stats.running = running_sequences();
    }
    // Shutdown: running requests end cancelled, queued ones fail.
    for (auto& a : running) {
      a->run->cancel();
      complete(*a);
    }
    running.clear();
    std::deque<std::unique_ptr<Job>> left;
    {
      std::lock_guard<std::mutex> lock(mutex);
      left.swap(queue);
      stats.queued = 0;
      stats.running = 0;
    }
    for (auto& job : left)
      fail(*job,
           std::make_exception_ptr(Error(
               ErrorKind::internal, "generation: the scheduler stopped before the request ran")));
  }
};

BatchScheduler::BatchScheduler(Options options) : impl_(std::make_unique<Impl>(options)) {
  impl_->worker = std::thread([this] { impl_->loop(); });
}

BatchScheduler::~BatchScheduler() {
  impl_->shutdown.store(true);
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  impl_->worker.join();
}

std::optional<std::future<GenerationResult>> BatchScheduler::submit(GenerationRequest request) {
  auto job = std::make_unique<Job>();
  job->request = std::move(request);
  job->submitted = Clock::now();
  auto future = job->promise.get_future();
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    if (impl_->stopping || impl_->queue.size() >= impl_->options.max_queued) return std::nullopt;
    impl_->queue.push_back(std::move(job));
    impl_->stats.queued = impl_->queue.size();
  }
  impl_->wake.notify_one();
  return future;
}

BatchScheduler::Stats BatchScheduler::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->stats;
}

}  // namespace mmfuse
