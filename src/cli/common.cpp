#include "cli/common.h"

#include <sys/resource.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "core/thread_pool.h"

namespace mmfuse::cli {

void add_threads_option(CLI::App* cmd, int* threads) {
  cmd->add_option("--threads", *threads, "Cores to use (default: all)")->check(CLI::Range(0, 1024));
}

void add_dtype_option(CLI::App* cmd, std::string* dtype) {
  cmd->add_option("--dtype", *dtype,
                  "Encoder arithmetic: f32 (default, exact), bf16, or int8 (dynamic quantisation)");
  // The loaders read the cache setting from the environment (io/packed_weight_cache.h);
  // options are parsed before any model or thread exists, so setting it here is safe.
  cmd->add_flag_callback(
      "--no-weight-cache", [] { ::setenv("MMFUSE_WEIGHT_CACHE", "0", 1); },
      "Pack the weights at load instead of mapping them from the packed-weight cache "
      "($MMFUSE_CACHE_DIR, else ~/.cache/mmfuse/packed), and write no cache file");
}

void add_store_option(CLI::App* cmd, std::string* url) {
  cmd->add_option("--store", *url,
                  "Inspection store: sqlite:///path/store.db or postgresql://user@host:port/db "
                  "(postgresql: alone = the PG* variables); default $MMFUSE_STORE, else SQLite "
                  "in the data folder");
}

std::string store_url_or_env(const std::string& flag, bool has_data) {
  if (!flag.empty() || has_data) return flag;
  const char* env = std::getenv("MMFUSE_STORE");
  return env ? env : "";
}

namespace {
int g_command_threads = 0;
std::shared_ptr<ThreadPool> g_command_pool;
}  // namespace

void apply_threads(int threads) {
  if (g_command_pool && g_command_threads == threads) return;
  g_command_threads = threads;
  g_command_pool = std::make_shared<ThreadPool>(threads);
}

std::shared_ptr<ThreadPool> command_pool() {
  if (!g_command_pool) g_command_pool = std::make_shared<ThreadPool>(g_command_threads);
  return g_command_pool;
}

void print_json(const Json& j) {
  std::string text = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  text.push_back('\n');
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

Json float_array(const float* data, size_t n) {
  Json arr = Json::array();
  for (size_t i = 0; i < n; ++i) arr.push_back(shortest_float(data[i]));
  return arr;
}

double now_ms() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double, std::milli>(clock::now().time_since_epoch()).count();
}

double peak_rss_mb() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

}  // namespace mmfuse::cli
