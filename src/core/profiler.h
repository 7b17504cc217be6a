// Optional per-operator timing (`mmfuse bench --profile`): where a forward pass
// spends its time. Off by default; when off a timer costs one relaxed load.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace mmfuse::profiler {

enum class Op { linear, attention, layer_norm, activation, residual, other, count };

void enable(bool on);
bool enabled();
void reset();
// (operator name, total milliseconds, calls), largest first.
std::vector<std::tuple<std::string, double, long>> report();
void add(Op op, double ms);

// Times the enclosing scope when profiling is on. Used by the operators, which
// run on the calling thread, so wall time of the parallel region is what is counted.
class Scope {
 public:
  explicit Scope(Op op) : op_(op), on_(enabled()) {
    if (on_) start_ = std::chrono::steady_clock::now();
  }
  ~Scope() {
    if (on_)
      add(op_, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count());
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  Op op_;
  bool on_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace mmfuse::profiler
