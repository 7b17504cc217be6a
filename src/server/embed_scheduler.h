// Dynamic batching for one model: concurrent embedding requests queue here and a
// worker thread merges their inputs into model calls of at most max_batch inputs,
// waiting up to max_wait_ms (from the oldest queued request's arrival) for a
// partial batch to fill. A request larger than
// max_batch is split over several calls; a full queue refuses new requests
// (the HTTP layer answers 503 with Retry-After).
// Thread-safety: submit() from any thread; one worker runs the model, holding
// the process-wide inference lock so only one model call uses the cores at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "models/dual_encoder.h"
#include "server/metrics.h"
#include "server/server_config.h"
#include "vision/image.h"

namespace mmfuse::server {

struct EmbedInput {
  enum class Kind { text, image };
  Kind kind = Kind::text;
  std::string text;
  Image image;  // decoded; moved into the model call
};

// One request's inputs and, when done, their projected features (not normalised).
class EmbedJob {
 public:
  explicit EmbedJob(std::vector<EmbedInput> inputs, size_t dim);
  // Waits until every input is embedded or failed; false on timeout (the job is
  // then cancelled: inputs not yet started are dropped).
  bool wait_for(std::chrono::milliseconds timeout);
  // [inputs, dim] features; rethrows the model's error if a call failed.
  const std::vector<float>& result() const;
  size_t size() const { return inputs_.size(); }

 private:
  friend class EmbedScheduler;
  std::vector<EmbedInput> inputs_;
  std::vector<float> features_;
  size_t next_ = 0;  // first input not yet taken by a batch (scheduler lock)
  std::chrono::steady_clock::time_point queued_at_;
  size_t remaining_ = 0;  // inputs not yet finished (job lock)
  std::exception_ptr error_;
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mutex_;
  std::condition_variable done_;
};

class QueueFull : public std::exception {
 public:
  const char* what() const noexcept override { return "the embedding queue is full"; }
};

class EmbedScheduler {
 public:
  EmbedScheduler(std::string model_name, const DualEncoder& model, BatchingConfig config,
                 Metrics& metrics, std::mutex& inference_lock);
  ~EmbedScheduler();
  EmbedScheduler(const EmbedScheduler&) = delete;
  EmbedScheduler& operator=(const EmbedScheduler&) = delete;

  // Queues the inputs; throws QueueFull when queue_size requests already wait,
  // Error(unavailable-like internal) after stop().
  std::shared_ptr<EmbedJob> submit(std::vector<EmbedInput> inputs);
  // Finishes every queued request, then stops the worker. Idempotent.
  void stop();
  size_t queued() const;
  const DualEncoder& model() const { return model_; }

 private:
  struct Slice {
    std::shared_ptr<EmbedJob> job;
    size_t begin, end;
  };
  void run();
  std::vector<Slice> take_batch(std::unique_lock<std::mutex>& lock);
  void execute(std::vector<Slice>& batch);

  std::string name_;
  const DualEncoder& model_;
  BatchingConfig config_;
  Metrics& metrics_;
  std::mutex& inference_lock_;
  size_t dim_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<EmbedJob>> queue_;
  size_t queued_inputs_ = 0;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace mmfuse::server
