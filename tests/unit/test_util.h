// Helpers for tests: fixture paths, reading reference tensors, comparing arrays.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "io/safetensors.h"
#include "mmfuse/thread_pool.h"

namespace mmfuse::test {

inline std::filesystem::path fixture(const std::string& relative) {
  return std::filesystem::path(MMFUSE_FIXTURES) / relative;
}

// Reference tensors of one safetensors file, read as float32 or int64.
class Reference {
 public:
  explicit Reference(const std::filesystem::path& path) : file_(SafetensorsFile::open(path)) {}
  std::vector<float> f32(const std::string& name) const {
    const TensorInfo* t = file_.find(name);
    EXPECT_NE(t, nullptr) << "reference tensor " << name;
    if (t == nullptr) return {};
    std::vector<float> out(static_cast<size_t>(t->numel()));
    convert_to_f32(t->dtype, t->data, out.size(), out.data());
    return out;
  }
  std::vector<int64_t> i64(const std::string& name) const {
    const TensorInfo* t = file_.find(name);
    EXPECT_NE(t, nullptr) << "reference tensor " << name;
    if (t == nullptr || t->dtype != DType::I64) return {};
    std::vector<int64_t> out(static_cast<size_t>(t->numel()));
    std::memcpy(out.data(), t->data, t->nbytes);
    return out;
  }
  std::vector<int64_t> shape(const std::string& name) const {
    const TensorInfo* t = file_.find(name);
    return t == nullptr ? std::vector<int64_t>{} : t->shape;
  }
  bool has(const std::string& name) const { return file_.find(name) != nullptr; }

 private:
  SafetensorsFile file_;
};

inline double max_abs_diff(const float* a, const float* b, size_t n) {
  double m = 0.0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

inline double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  return max_abs_diff(a.data(), b.data(), std::min(a.size(), b.size()));
}

inline double cosine(const float* a, const float* b, size_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < n; ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

// A pool of all cores shared by the tests that compute on an explicit pool.
inline ThreadPool& pool() {
  static ThreadPool shared(0);
  return shared;
}

// The same pool for loaders that take a shared_ptr (models keep their pool).
inline std::shared_ptr<ThreadPool> pool_ptr() {
  static const std::shared_ptr<ThreadPool> shared = std::make_shared<ThreadPool>(0);
  return shared;
}

// Polls `pred` every 10 ms until it holds or timeout_ms pass; returns whether it held. Use it
// as ASSERT_TRUE(wait_until(...)) << "what did not happen", never as a plain delay.
template <class Pred>
bool wait_until(Pred pred, int timeout_ms) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

// The one legitimate fixed wait: proving that nothing *more* happens (a late duplicate, an
// extra request). Checks `pred` every 10 ms for the whole window_ms and returns false as soon
// as it fails. The window bounds how late an unwanted event can be and still be caught.
template <class Pred>
bool holds_for(Pred pred, int window_ms) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(window_ms);
  while (std::chrono::steady_clock::now() < end) {
    if (!pred()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

}  // namespace mmfuse::test
