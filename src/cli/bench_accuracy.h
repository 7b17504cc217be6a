// `mmfuse bench --dtype bf16|int8 --accuracy`: how far a reduced-precision
// text-image model is from its own float32 model, on the same inputs.
#pragma once

#include <string>
#include <vector>

namespace mmfuse::cli {

struct AccuracyBenchOptions {
  std::string model;
  std::string dtype = "int8";
  std::vector<std::string> images;  // files or folders; none: synthetic images
  std::vector<std::string> texts;   // none: built-in captions
  int synthetic_images = 32;
  bool json = false;
};

// Prints per-input cosine between the two models' projected features (min,
// mean), the cosine of every zero-shot probability vector, and the share of
// images whose zero-shot top-1 label is the same (over a fixed label set).
void bench_accuracy(const AccuracyBenchOptions& options);

}  // namespace mmfuse::cli
