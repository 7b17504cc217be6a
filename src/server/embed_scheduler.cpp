// EmbedScheduler: the batching loop (see embed_scheduler.h).
#include "server/embed_scheduler.h"

#include <algorithm>

#include "mmfuse/error.h"

namespace mmfuse::server {

EmbedJob::EmbedJob(std::vector<EmbedInput> inputs, size_t dim)
    : inputs_(std::move(inputs)),
      features_(inputs_.size() * dim, 0.0f),
      remaining_(inputs_.size()) {}

bool EmbedJob::wait_for(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (done_.wait_for(lock, timeout, [&] { return remaining_ == 0; })) return true;
  cancelled_ = true;
  return false;
}

const std::vector<float>& EmbedJob::result() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (error_) std::rethrow_exception(error_);
  return features_;
}

EmbedScheduler::EmbedScheduler(std::string model_name, const DualEncoder& model,
                               BatchingConfig config, Metrics& metrics, std::mutex& inference_lock)
    : name_(std::move(model_name)),
      model_(model),
      config_(config),
      metrics_(metrics),
      inference_lock_(inference_lock),
      dim_(static_cast<size_t>(model.dim())) {
  metrics_.set_queue_depth(name_, 0);
  worker_ = std::thread([this] { run(); });
}

EmbedScheduler::~EmbedScheduler() {
  stop();
}

std::shared_ptr<EmbedJob> EmbedScheduler::submit(std::vector<EmbedInput> inputs) {
  auto job = std::make_shared<EmbedJob>(std::move(inputs), dim_);
  if (job->size() == 0) return job;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) throw QueueFull();
    if (queue_.size() >= config_.queue_size) {
      metrics_.count_rejected(name_);
      throw QueueFull();
    }
    job->queued_at_ = std::chrono::steady_clock::now();
    queue_.push_back(job);
    queued_inputs_ += job->size();
    metrics_.set_queue_depth(name_, queue_.size());
  }
  wake_.notify_one();
  return job;
}

void EmbedScheduler::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ && !worker_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
}

size_t EmbedScheduler::queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size();
}

std::vector<EmbedScheduler::Slice> EmbedScheduler::take_batch(std::unique_lock<std::mutex>& lock) {
  // Cancelled requests (their client timed out) are dropped before any work.
  auto drop_cancelled = [&] {
    for (auto it = queue_.begin(); it != queue_.end();) {
      if ((*it)->cancelled_) {
        queued_inputs_ -= (*it)->size() - (*it)->next_;
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
  };
  drop_cancelled();
  if (config_.enabled && config_.max_wait_ms > 0 && queued_inputs_ < config_.max_batch &&
      !stopping_ && !queue_.empty()) {
    // A partial batch waits for more requests, at most max_wait_ms after its oldest request
    // arrived.
    const auto deadline =
        queue_.front()->queued_at_ + std::chrono::milliseconds(config_.max_wait_ms);
    wake_.wait_until(lock, deadline,
                     [&] { return stopping_ || queued_inputs_ >= config_.max_batch; });
    drop_cancelled();
  }
  std::vector<Slice> batch;
  size_t room = config_.max_batch;
  while (room > 0 && !queue_.empty()) {
    auto& job = queue_.front();
    const size_t take = std::min(room, job->size() - job->next_);
    batch.push_back({job, job->next_, job->next_ + take});
    job->next_ += take;
    queued_inputs_ -= take;
    room -= take;
    if (job->next_ == job->size()) queue_.pop_front();
    if (!config_.enabled) break;  // no merging across requests
  }
  metrics_.set_queue_depth(name_, queue_.size());
  return batch;
}

void EmbedScheduler::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty() && stopping_) return;
    std::vector<Slice> batch = take_batch(lock);
    if (batch.empty()) continue;
    lock.unlock();
    execute(batch);
    lock.lock();
  }
}

void EmbedScheduler::execute(std::vector<Slice>& batch) {
  // One model call per input kind, each row written back to its request.
  for (const auto kind : {EmbedInput::Kind::text, EmbedInput::Kind::image}) {
    std::vector<std::string> texts;
    std::vector<Image> images;
    std::vector<std::pair<EmbedJob*, size_t>> rows;
    for (auto& s : batch)
      for (size_t i = s.begin; i < s.end; ++i) {
        EmbedInput& in = s.job->inputs_[i];
        if (in.kind != kind) continue;
        if (kind == EmbedInput::Kind::text)
          texts.push_back(std::move(in.text));
        else
          images.push_back(std::move(in.image));
        rows.emplace_back(s.job.get(), i);
      }
    if (rows.empty()) continue;
    std::vector<float> features;
    std::exception_ptr error;
    const auto t0 = std::chrono::steady_clock::now();
    try {
      std::lock_guard<std::mutex> cores(inference_lock_);
      features = kind == EmbedInput::Kind::text ? model_.text_features(texts)
                                                : model_.image_features(images);
      MMFUSE_ASSERT(features.size() == rows.size() * dim_);
    } catch (...) {
      error = std::current_exception();
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!error)
      metrics_.observe_batch(name_, kind == EmbedInput::Kind::text ? "text" : "image", rows.size(),
                             seconds);
    for (size_t r = 0; r < rows.size(); ++r) {
      EmbedJob* job = rows[r].first;
      std::lock_guard<std::mutex> lock(job->mutex_);
      if (error) {
        if (!job->error_) job->error_ = error;
      } else {
        std::copy_n(features.data() + r * dim_, dim_,
                    job->features_.data() + rows[r].second * dim_);
      }
    }
  }
  // Release images and mark the slices finished.
  for (auto& s : batch) {
    std::lock_guard<std::mutex> lock(s.job->mutex_);
    for (size_t i = s.begin; i < s.end; ++i) s.job->inputs_[i] = EmbedInput{};
    s.job->remaining_ -= s.end - s.begin;
    if (s.job->remaining_ == 0) s.job->done_.notify_all();
  }
}

}  // namespace mmfuse::server
