// Streaming-throughput measurement for `mmfuse sensor bench`: fit time, rows/s
// of one stream (rows scored one by one, in order, through the full pipeline),
// and aggregate rows/s of `threads` independent streams sharing one model.
#pragma once

#include <string>
#include <vector>

#include "detect/pipeline.h"

namespace mmfuse::sensor {

struct SensorBenchResult {
  std::string method;
  double fit_ms = 0.0;
  double rows_per_s_one_stream = 0.0;
  double rows_per_s_all_streams = 0.0;
  int streams = 1;
  size_t rows = 0;
};

SensorBenchResult bench_streaming(const std::vector<std::string>& channels, const Matrix& data,
                                  size_t train_rows, const PipelineOptions& options, int threads);

}  // namespace mmfuse::sensor
