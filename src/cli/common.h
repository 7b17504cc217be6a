// Helpers shared by the subcommands: thread options, JSON output, reading inputs.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mmfuse::cli {

// CLI output keeps keys in the order they are written (the documented order).
using Json = nlohmann::ordered_json;

// Adds `--threads N` (default: all cores) to a subcommand.
void add_threads_option(CLI::App* cmd, int* threads);
// Applies the option: sizes the process-wide pool (0 = all cores).
void apply_threads(int threads);

// Writes one JSON document and a newline to stdout, flushing it.
void print_json(const Json& j);

// A float as the double that prints as its shortest round-trip decimal form.
double shortest_float(float value);

// A vector of floats as a JSON array (floats print as their shortest round-trip form).
Json float_array(const float* data, size_t n);

}  // namespace mmfuse::cli
