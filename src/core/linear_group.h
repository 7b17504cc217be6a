// Several linear layers applied to one input: attention's q, k and v
// projections. In bf16 / int8 the input is converted (rounded or quantised
// per row) once for all of them, and the column slices of every layer are
// shared out in one parallel loop: one wake-up of the pool instead of three,
// which is what a batch-1 ViT step spends much of its time on.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include "core/ops.h"

namespace mmfuse {

// y_i = x W_i^T + b_i for every (layer, y) pair; each y is [rows, layer.out].
// Layers that do not share one packed reduced precision and input width run
// one after another through linear(), with identical results.
void linear_group(ThreadPool& pool, const float* x, size_t rows,
                  const std::vector<std::pair<const Linear*, float*>>& layers);

}  // namespace mmfuse
