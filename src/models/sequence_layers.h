// 1-D convolution, max pooling and LSTM over time-major sequences x[T, C]
// (row t = frame t), with PyTorch's weight layouts (nn.Conv1d, nn.MaxPool1d,
// nn.LSTM) so state_dict tensors load as they are. GEMMs go through the shared
// linear() of core/ops.h; everything runs on the pool passed in (pass a
// one-thread pool when calling from inside a parallel task).
#pragma once

#include <string>
#include <vector>

#include "core/ops.h"
#include "io/model_folder.h"

namespace mmfuse {

// nn.Conv1d(in, out, kernel, padding), stride 1, dilation 1, groups 1.
struct Conv1dWeights {
  const float* weight = nullptr;  // [out, in, kernel]
  const float* bias = nullptr;    // [out] or null
  int in = 0, out = 0, kernel = 1, padding = 0;
};

// One direction of one nn.LSTM layer; gate order i, f, g, o as in PyTorch.
struct LstmDirection {
  Linear input;      // weight_ih [4H, in], bias_ih [4H]
  Linear recurrent;  // weight_hh [4H, H], bias_hh [4H]
};

struct LstmLayer {
  int hidden = 0;
  std::vector<LstmDirection> directions;  // 1, or 2 (forward, reverse)
};

Conv1dWeights load_conv1d(WeightStore& store, const std::string& prefix, int in, int out,
                          int kernel, int padding);
// Loads `prefix.weight_ih_l{layer}` ... and, if bidirectional, the `_reverse` set.
LstmLayer load_lstm_layer(WeightStore& store, const std::string& prefix, int layer, int in,
                          int hidden, bool bidirectional);

// y[T + 2p - k + 1, out] = conv(x[T, in]) (im2col, then one GEMM).
std::vector<float> conv1d(ThreadPool& pool, const float* x, size_t frames,
                          const Conv1dWeights& conv);

// y[T / k, C] = max over non-overlapping windows of k frames (the tail is dropped, as PyTorch).
std::vector<float> max_pool1d(const float* x, size_t frames, size_t channels, size_t kernel);

// y[T, H * directions]: the forward direction's h_t, then the reverse one's.
// If final_state is not null it receives [H * directions]: the forward state
// after frame T-1 and the reverse state after frame 0 (PyTorch's h_n).
std::vector<float> lstm_layer(ThreadPool& pool, const float* x, size_t frames,
                              const LstmLayer& layer, std::vector<float>* final_state = nullptr);

}  // namespace mmfuse
