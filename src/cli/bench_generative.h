// `mmfuse bench --model GENERATIVE_DIR --prompt-tokens P --new-tokens N`:
// prefill and decode throughput of a generative model (bench/run_generate_bench.sh
// puts it beside llama.cpp and PyTorch). With --image: caption latency of an
// image model, from the JPEG to the last of N tokens (bench/run_blip2_bench.sh).
#pragma once

#include <string>

namespace mmfuse::cli {

struct GenerativeBenchOptions {
  std::string model;
  int prompt_tokens = 128;
  int new_tokens = 64;
  std::string image;   // set: time captioning this image
  std::string prompt;  // with image: the prompt ("" captions)
  int iterations = 3;  // timed runs of prefill + decode; the median is reported
  std::string dtype = "f32";  // f32: weights as stored; int8: q8_0
  bool json = false;
};

void bench_generative(const GenerativeBenchOptions& options);

}  // namespace mmfuse::cli
