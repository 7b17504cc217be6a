#include "core/linear_group.h"

#include "core/packed_gemm.h"
#include "core/profiler.h"

namespace mmfuse {

void linear_group(ThreadPool& pool, const float* x, size_t rows,
                  const std::vector<std::pair<const Linear*, float*>>& layers) {
  bool shared = rows > 0 && !layers.empty();
  for (const auto& [lin, y] : layers) {
    const Linear& first = *layers.front().first;
    shared = shared && lin->packed != nullptr && first.packed != nullptr &&
             lin->packed->precision() != Precision::f32 &&
             lin->packed->precision() == first.packed->precision() && lin->in == first.in;
  }
  if (!shared) {
    for (const auto& [lin, y] : layers) linear(pool, x, rows, *lin, y);
    return;
  }
  profiler::Scope timer(profiler::Op::linear);
  // One converted input serves every layer: same precision, width and CPU, so
  // the same conversion (as linear() would do for each).
  const PackedLinear& converter = *layers.front().first->packed;
  thread_local PackedLinear::Input caller_input;
  PackedLinear::Input* input = &caller_input;
  converter.prepare_input(static_cast<int>(rows), *input);
  if (rows * static_cast<size_t>(converter.in()) < (1u << 15)) {  // as linear(): not worth a wake-up
    converter.convert_rows(x, 0, static_cast<int>(rows), *input);
  } else {
    pool.parallel_for(rows, [&converter, x, input](size_t r0, size_t r1, int) {
      converter.convert_rows(x, static_cast<int>(r0), static_cast<int>(r1), *input);
    });
  }
  // (layer, slice) jobs, in layer order.
  thread_local std::vector<std::pair<size_t, int>> jobs;
  jobs.clear();
  for (size_t l = 0; l < layers.size(); ++l)
    for (int s = 0; s < layers[l].first->packed->slices(); ++s) jobs.emplace_back(l, s);
  pool.parallel_for(jobs.size(), [&layers, job_list = &jobs, input](size_t j0, size_t j1, int) {
    for (size_t j = j0; j < j1; ++j) {
      const auto [l, s] = (*job_list)[j];
      const Linear& lin = *layers[l].first;
      lin.packed->multiply_converted(*input, s, lin.bias, layers[l].second, lin.out, false);
    }
  });
}

}  // namespace mmfuse
