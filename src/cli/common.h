// Helpers shared by the subcommands: thread options, JSON output, reading inputs.
#pragma once

#include "core/strings.h"

#include <CLI/CLI.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "mmfuse/error.h"

namespace mmfuse::cli {

// CLI output keeps keys in the order they are written (the documented order).
using Json = nlohmann::ordered_json;

// Adds `--threads N` (default: all cores) to a subcommand.
void add_threads_option(CLI::App* cmd, int* threads);
// Adds `--dtype f32|bf16|int8` (the encoder layers' arithmetic; default f32)
// to a subcommand; parse_precision() checks the value when the command runs.
// Also adds `--no-weight-cache` (no packed-weight cache: MMFUSE_WEIGHT_CACHE=0).
void add_dtype_option(CLI::App* cmd, std::string* dtype);
// Adds `--store URL`: the inspection store as sqlite:///path/store.db or
// postgresql://user@host:port/db (docs/store.md).
void add_store_option(CLI::App* cmd, std::string* url);
// The store URL a command uses: --store when given, else $MMFUSE_STORE unless an
// explicit --data DIR asks for SQLite there (`has_data`), else "" (SQLite in the data folder).
std::string store_url_or_env(const std::string& flag, bool has_data);
// Applies the option: sizes the pool this command computes with (0 = all cores).
void apply_threads(int threads);
// The command's pool (one command runs per process): models opened by the
// command are handed it, so `--threads N` means N busy cores in all.
std::shared_ptr<ThreadPool> command_pool();

// Runs `fn`; a bad_input error it throws is re-thrown naming `flag`, the
// option whose value was at fault (library messages name fields, not flags).
template <typename Fn>
decltype(auto) with_flag(const std::string& flag, Fn&& fn) {
  try {
    return fn();
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::bad_input) throw;
    throw Error(e.kind(), flag + ": " + e.what());
  }
}

// Monotonic clock in milliseconds, and the process's peak resident memory in MiB (benchmarks).
double now_ms();
double peak_rss_mb();

// Writes one JSON document and a newline to stdout, flushing it.
void print_json(const Json& j);


// A vector of floats as a JSON array (floats print as their shortest round-trip form).
Json float_array(const float* data, size_t n);

}  // namespace mmfuse::cli
