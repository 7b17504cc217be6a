// `mmfuse bench --model GENERATIVE_DIR --prompt-tokens P --new-tokens N`:
// prefill and decode throughput of a generative model (bench/run_generate_bench.sh
// puts it beside llama.cpp and PyTorch).
#pragma once

#include <string>

namespace mmfuse::cli {

struct GenerativeBenchOptions {
  std::string model;
  int prompt_tokens = 128;
  int new_tokens = 64;
  int iterations = 3;  // timed runs of prefill + decode; the median is reported
  bool json = false;
};

void bench_generative(const GenerativeBenchOptions& options);

}  // namespace mmfuse::cli
