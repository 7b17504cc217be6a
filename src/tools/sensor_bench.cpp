#include "tools/sensor_bench.h"

#include <chrono>
#include <thread>

#include "mmfuse/error.h"

namespace mmfuse::sensor {

SensorBenchResult bench_streaming(const std::vector<std::string>& channels, const Matrix& data,
                                  size_t train_rows, const PipelineOptions& options, int threads) {
  using clock = std::chrono::steady_clock;
  MMFUSE_CHECK(train_rows < data.rows, bad_input, "bench: need more rows than --train-rows");
  SensorBenchResult result;
  result.method = options.method;
  result.rows = data.rows;
  result.streams = std::max(threads, 1);
  const auto t0 = clock::now();
  const SensorModel model(channels, data.slice_rows(0, train_rows), options);
  const auto t1 = clock::now();
  result.fit_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();

  // Keeps the compiler from dropping the scoring loop.
  auto run_stream = [&](size_t* anomalies) {
    StreamScorer s = model.stream();
    size_t n = 0;
    for (size_t r = 0; r < data.rows; ++r) n += s.push(data.row(r)).anomaly ? 1 : 0;
    *anomalies = n;
  };
  size_t sink = 0;
  const auto t2 = clock::now();
  run_stream(&sink);
  const auto t3 = clock::now();
  result.rows_per_s_one_stream =
      static_cast<double>(data.rows) / std::chrono::duration<double>(t3 - t2).count();

  std::vector<size_t> sinks(static_cast<size_t>(result.streams));
  std::vector<std::thread> pool;
  const auto t4 = clock::now();
  for (int i = 0; i < result.streams; ++i)
    pool.emplace_back(run_stream, &sinks[static_cast<size_t>(i)]);
  for (auto& t : pool) t.join();
  const auto t5 = clock::now();
  result.rows_per_s_all_streams = static_cast<double>(data.rows) * result.streams /
                                  std::chrono::duration<double>(t5 - t4).count();
  return result;
}

}  // namespace mmfuse::sensor
