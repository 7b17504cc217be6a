#include "core/profiler.h"

#include <algorithm>
#include <mutex>
#include <tuple>

namespace mmfuse::profiler {

namespace {
std::atomic<bool> g_enabled{false};
std::mutex g_mutex;
double g_ms[static_cast<int>(Op::count)] = {};
long g_calls[static_cast<int>(Op::count)] = {};
const char* const kNames[] = {"linear (GEMM)", "attention", "layer_norm", "activation", "residual", "other"};
}  // namespace

void enable(bool on) { g_enabled.store(on, std::memory_order_relaxed); }
bool enabled() { return g_enabled.load(std::memory_order_relaxed); }

void reset() {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fill(std::begin(g_ms), std::end(g_ms), 0.0);
  std::fill(std::begin(g_calls), std::end(g_calls), 0L);
}

void add(Op op, double ms) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_ms[static_cast<int>(op)] += ms;
  ++g_calls[static_cast<int>(op)];
}

std::vector<std::tuple<std::string, double, long>> report() {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::vector<std::tuple<std::string, double, long>> rows;
  for (int i = 0; i < static_cast<int>(Op::count); ++i)
    if (g_calls[i] > 0) rows.emplace_back(kNames[i], g_ms[i], g_calls[i]);
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return std::get<1>(a) > std::get<1>(b); });
  return rows;
}

}  // namespace mmfuse::profiler
