// Server metrics in the Prometheus text exposition format (version 0.0.4):
// request counts and latency per route and status, batch sizes, queue depth,
// inference time per model, and gauges other parts register (inspections,
// alarms, outbox backlog) that are read at scrape time.
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace mmfuse::server {

// A cumulative histogram over fixed upper bounds (+Inf implied).
struct Histogram {
  std::vector<double> bounds;
  std::vector<uint64_t> counts;  // per bound, not cumulative; last = above all bounds
  double sum = 0;
  uint64_t count = 0;
  void observe(double v);
};

class Metrics {
 public:
  // One finished HTTP request; `route` is the route pattern, not the raw path.
  void observe_request(const std::string& method, const std::string& route, int status,
                       double seconds);
  // One model call of `size` inputs of `kind` (text or image) that took `seconds`.
  void observe_batch(const std::string& model, const std::string& kind, size_t size,
                     double seconds);
  void set_queue_depth(const std::string& model, size_t requests);
  void count_rejected(const std::string& model);  // queue full (503)

  // Generation: the time from a request's arrival to its first new token.
  void observe_first_token(const std::string& model, double seconds);
  // One finished generated answer (a choice): its tokens, why it ended
  // (stop, length, cancelled, error) and the seconds from its first token to
  // its last (its decoding rate is tokens-1 over that).
  void observe_generation(const std::string& model, const std::string& finish_reason, size_t tokens,
                          double decode_seconds);

  // A gauge or counter computed at scrape time: returns (labels text, value) rows,
  // labels text like `device="p1"` or "" for none.
  using Sampler = std::function<std::vector<std::pair<std::string, double>>()>;
  void add_sampled(const std::string& name, const std::string& type, const std::string& help,
                   Sampler sampler);

  // The whole exposition (text/plain; version=0.0.4).
  std::string render() const;

  // Number of model calls observed for `model` with exactly `size` inputs (tests).
  uint64_t batches_of_size(const std::string& model, size_t size) const;

 private:
  struct Sampled {
    std::string name, type, help;
    Sampler sampler;
  };
  mutable std::mutex mutex_;
  std::map<std::string, uint64_t> requests_;         // labels → count
  std::map<std::string, Histogram> latency_;         // labels → seconds
  std::map<std::string, Histogram> batch_size_;      // model → inputs per call
  std::map<std::string, Histogram> inference_;       // model,kind → seconds
  std::map<std::string, uint64_t> inferred_inputs_;  // model,kind → inputs
  std::map<std::string, double> queue_depth_;        // model → requests waiting
  std::map<std::string, uint64_t> rejected_;         // model → 503s
  std::map<std::string, Histogram> first_token_;     // model → seconds to the first token
  std::map<std::string, Histogram> decode_rate_;     // model → tokens/s of each answer
  std::map<std::string, uint64_t> generated_;        // model → tokens generated
  std::map<std::string, uint64_t> generations_;      // model,finish_reason → answers
  std::map<std::pair<std::string, size_t>, uint64_t> exact_batches_;
  std::vector<Sampled> sampled_;
};

// A label value escaped for the exposition format (backslash, quote, newline).
std::string escape_label(const std::string& value);

}  // namespace mmfuse::server
