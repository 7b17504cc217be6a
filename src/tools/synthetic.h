// Deterministic synthetic sensor data for tests and benchmarks: `channels`
// correlated AR(1) signals (a shared slow factor plus per-channel noise), with
// optional injected faults. Not a model of any real machine.
#pragma once

#include <cstdint>

#include "sensor/matrix.h"

namespace mmfuse::sensor {

struct SyntheticOptions {
  size_t rows = 2000;
  size_t channels = 8;
  uint64_t seed = 0;
  // Rows [fault_begin, fault_end) get a level shift of fault_size (in noise
  // standard deviations) on the first two channels; fault_end = 0 for none.
  size_t fault_begin = 0, fault_end = 0;
  double fault_size = 6.0;
};

Matrix synthetic_sensor_data(const SyntheticOptions& options);

}  // namespace mmfuse::sensor
