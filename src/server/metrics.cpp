// Metrics: counters and histograms kept under one mutex, rendered on scrape.
#include "server/metrics.h"

#include <algorithm>
#include <charconv>

namespace mmfuse::server {

namespace {

const std::vector<double> kLatencyBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                            0.25,  0.5,    1,     2.5,  5,     10,   30};
const std::vector<double> kBatchBounds = {1, 2, 4, 8, 16, 32, 64, 128, 256};
const std::vector<double> kFirstTokenBounds = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                               2.5,  5,     10,   30,  60,   120};
const std::vector<double> kTokenRateBounds = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000};

Histogram make_histogram(const std::vector<double>& bounds) {
  Histogram h;
  h.bounds = bounds;
  h.counts.assign(bounds.size() + 1, 0);
  return h;
}

// The shortest text that reads back as `v` ("0.0025", not "0.0025000000000000001").
std::string number(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

void header(std::string& out, const std::string& name, const std::string& type,
            const std::string& help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void render_histogram(std::string& out, const std::string& name, const std::string& labels,
                      const Histogram& h) {
  const std::string sep = labels.empty() ? "" : ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.bounds.size(); ++i) {
    cumulative += h.counts[i];
    out += name + "_bucket{" + labels + sep + "le=\"" + number(h.bounds[i]) + "\"} " +
           std::to_string(cumulative) + "\n";
  }
  out += name + "_bucket{" + labels + sep + "le=\"+Inf\"} " + std::to_string(h.count) + "\n";
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += name + "_sum" + braces + " " + number(h.sum) + "\n";
  out += name + "_count" + braces + " " + std::to_string(h.count) + "\n";
}

}  // namespace

void Histogram::observe(double v) {
  const auto it = std::lower_bound(bounds.begin(), bounds.end(), v);
  ++counts[static_cast<size_t>(it - bounds.begin())];
  sum += v;
  ++count;
}

std::string escape_label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void Metrics::observe_request(const std::string& method, const std::string& route, int status,
                              double seconds) {
  const std::string base =
      "method=\"" + escape_label(method) + "\",route=\"" + escape_label(route) + "\"";
  const std::string labels = base + ",status=\"" + std::to_string(status) + "\"";
  std::lock_guard<std::mutex> lock(mutex_);
  ++requests_[labels];
  auto it = latency_.find(labels);
  if (it == latency_.end()) it = latency_.emplace(labels, make_histogram(kLatencyBounds)).first;
  it->second.observe(seconds);
}

void Metrics::observe_batch(const std::string& model, const std::string& kind, size_t size,
                            double seconds) {
  const std::string m = "model=\"" + escape_label(model) + "\"";
  const std::string mk = m + ",kind=\"" + escape_label(kind) + "\"";
  std::lock_guard<std::mutex> lock(mutex_);
  auto b = batch_size_.find(m);
  if (b == batch_size_.end()) b = batch_size_.emplace(m, make_histogram(kBatchBounds)).first;
  b->second.observe(static_cast<double>(size));
  auto i = inference_.find(mk);
  if (i == inference_.end()) i = inference_.emplace(mk, make_histogram(kLatencyBounds)).first;
  i->second.observe(seconds);
  inferred_inputs_[mk] += size;
  ++exact_batches_[{model, size}];
}

void Metrics::set_queue_depth(const std::string& model, size_t requests) {
  std::lock_guard<std::mutex> lock(mutex_);
  queue_depth_["model=\"" + escape_label(model) + "\""] = static_cast<double>(requests);
}

void Metrics::count_rejected(const std::string& model) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++rejected_["model=\"" + escape_label(model) + "\""];
}

void Metrics::observe_first_token(const std::string& model, double seconds) {
  const std::string m = "model=\"" + escape_label(model) + "\"";
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = first_token_.find(m);
  if (it == first_token_.end())
    it = first_token_.emplace(m, make_histogram(kFirstTokenBounds)).first;
  it->second.observe(seconds);
}

void Metrics::observe_generation(const std::string& model, const std::string& finish_reason,
                                 size_t tokens, double decode_seconds) {
  const std::string m = "model=\"" + escape_label(model) + "\"";
  std::lock_guard<std::mutex> lock(mutex_);
  generated_[m] += tokens;
  ++generations_[m + ",finish_reason=\"" + escape_label(finish_reason) + "\""];
  // The first token comes from the prompt pass; the rate is of the decode steps after it.
  if (tokens >= 2 && decode_seconds > 0) {
    auto it = decode_rate_.find(m);
    if (it == decode_rate_.end())
      it = decode_rate_.emplace(m, make_histogram(kTokenRateBounds)).first;
    it->second.observe(double(tokens - 1) / decode_seconds);
  }
}

void Metrics::add_sampled(const std::string& name, const std::string& type, const std::string& help,
                          Sampler sampler) {
  std::lock_guard<std::mutex> lock(mutex_);
  sampled_.push_back({name, type, help, std::move(sampler)});
}

uint64_t Metrics::batches_of_size(const std::string& model, size_t size) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = exact_batches_.find({model, size});
  return it == exact_batches_.end() ? 0 : it->second;
}

std::string Metrics::render() const {
  std::vector<Sampled> sampled;
  std::string out;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    header(out, "mmfuse_http_requests_total", "counter",
           "HTTP requests by method, route and status.");
    for (const auto& [labels, n] : requests_)
      out += "mmfuse_http_requests_total{" + labels + "} " + std::to_string(n) + "\n";
    header(out, "mmfuse_http_request_duration_seconds", "histogram",
           "HTTP request latency by method, route and status.");
    for (const auto& [labels, h] : latency_)
      render_histogram(out, "mmfuse_http_request_duration_seconds", labels, h);
    header(out, "mmfuse_batch_size", "histogram", "Inputs per model call (merged requests).");
    for (const auto& [labels, h] : batch_size_)
      render_histogram(out, "mmfuse_batch_size", labels, h);
    header(out, "mmfuse_inference_seconds", "histogram",
           "Model call duration by model and input kind.");
    for (const auto& [labels, h] : inference_)
      render_histogram(out, "mmfuse_inference_seconds", labels, h);
    header(out, "mmfuse_inference_inputs_total", "counter",
           "Inputs embedded by model and input kind.");
    for (const auto& [labels, n] : inferred_inputs_)
      out += "mmfuse_inference_inputs_total{" + labels + "} " + std::to_string(n) + "\n";
    header(out, "mmfuse_queue_depth", "gauge", "Embedding requests waiting per model.");
    for (const auto& [labels, v] : queue_depth_)
      out += "mmfuse_queue_depth{" + labels + "} " + number(v) + "\n";
    header(out, "mmfuse_queue_rejected_total", "counter",
           "Requests refused with 503 because the queue was full.");
    for (const auto& [labels, n] : rejected_)
      out += "mmfuse_queue_rejected_total{" + labels + "} " + std::to_string(n) + "\n";
    header(out, "mmfuse_generation_time_to_first_token_seconds", "histogram",
           "Seconds from a generation request's arrival to its first new token.");
    for (const auto& [labels, h] : first_token_)
      render_histogram(out, "mmfuse_generation_time_to_first_token_seconds", labels, h);
    header(out, "mmfuse_generation_tokens_per_second", "histogram",
           "Decoding rate of each generated answer (tokens after the first per second).");
    for (const auto& [labels, h] : decode_rate_)
      render_histogram(out, "mmfuse_generation_tokens_per_second", labels, h);
    header(out, "mmfuse_generated_tokens_total", "counter", "Tokens generated per model.");
    for (const auto& [labels, n] : generated_)
      out += "mmfuse_generated_tokens_total{" + labels + "} " + std::to_string(n) + "\n";
    header(out, "mmfuse_generations_total", "counter",
           "Generated answers by model and finish reason.");
    for (const auto& [labels, n] : generations_)
      out += "mmfuse_generations_total{" + labels + "} " + std::to_string(n) + "\n";
    sampled = sampled_;
  }
  // Samplers may query a database: run them outside the lock.
  for (const auto& s : sampled) {
    header(out, s.name, s.type, s.help);
    for (const auto& [labels, v] : s.sampler())
      out += s.name + (labels.empty() ? "" : "{" + labels + "}") + " " + number(v) + "\n";
  }
  return out;
}

}  // namespace mmfuse::server
