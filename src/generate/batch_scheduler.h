// Continuous batching: many requests share one LanguageModel. A worker thread
// runs one batched decode step for every running sequence at a time; new
// requests are prefilled and join between steps, finished or cancelled ones
// leave. Results are the tokens each request would get alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <future>
#include <memory>
#include <optional>

#include "generate/generator.h"

namespace mmfuse {

class BatchScheduler {
 public:
  struct Options {
    size_t max_running = 8;   // sequences decoded together
    size_t max_queued = 64;   // waiting requests beyond that are refused
  };
  struct Stats {
    size_t running = 0;
    size_t queued = 0;
    uint64_t tokens_generated = 0;   // since start
    uint64_t requests_completed = 0;
    double last_ttft_ms = 0;         // time to first token of the latest request
    double decode_tokens_per_s = 0;  // over the recent steps
  };

  BatchScheduler(Options options);
  ~BatchScheduler();  // cancels what is still running and joins the worker
  BatchScheduler(const BatchScheduler&) = delete;
  BatchScheduler& operator=(const BatchScheduler&) = delete;

  // Queues a request (its model, prompt, config, adapter, on_token and cancel
  // are used as generate() uses them). Returns nullopt when the queue is full
  // (HTTP 503). Requests the batch cannot serve step by step (beam search)
  // run whole between steps. The future carries the result or the error.
  std::optional<std::future<GenerationResult>> submit(GenerationRequest request);

  Stats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mmfuse
