#include "models/sequence_layers.h"

#include <algorithm>
#include <cmath>

#include "mmfuse/error.h"

namespace mmfuse {

namespace {

float sigmoid(float v) {
  return 1.0f / (1.0f + std::exp(-v));
}

}  // namespace

Conv1dWeights load_conv1d(WeightStore& store, const std::string& prefix, int in, int out,
                          int kernel, int padding) {
  Conv1dWeights c;
  c.in = in;
  c.out = out;
  c.kernel = kernel;
  c.padding = padding;
  c.weight = store.f32(prefix + ".weight", {out, in, kernel});
  c.bias = store.f32(prefix + ".bias", {out});
  return c;
}

LstmLayer load_lstm_layer(WeightStore& store, const std::string& prefix, int layer, int in,
                          int hidden, bool bidirectional) {
  LstmLayer l;
  l.hidden = hidden;
  for (int d = 0; d < (bidirectional ? 2 : 1); ++d) {
    const std::string suffix = "_l" + std::to_string(layer) + (d == 1 ? "_reverse" : "");
    LstmDirection dir;
    dir.input = {store.f32(prefix + ".weight_ih" + suffix, {4 * hidden, in}),
                 store.f32(prefix + ".bias_ih" + suffix, {4 * hidden}), in, 4 * hidden, nullptr};
    dir.recurrent = {store.f32(prefix + ".weight_hh" + suffix, {4 * hidden, hidden}),
                     store.f32(prefix + ".bias_hh" + suffix, {4 * hidden}), hidden, 4 * hidden,
                     nullptr};
    l.directions.push_back(dir);
  }
  return l;
}

std::vector<float> conv1d(ThreadPool& pool, const float* x, size_t frames,
                          const Conv1dWeights& conv) {
  const long t_in = static_cast<long>(frames), k = conv.kernel, p = conv.padding;
  const long t_out = t_in + 2 * p - k + 1;
  MMFUSE_ASSERT(t_out >= 1);
  const size_t in = static_cast<size_t>(conv.in), width = in * static_cast<size_t>(k);
  // cols[t, c * k + j] = x[t + j - p, c] (zero outside), matching weight[o, c, j].
  std::vector<float> cols(static_cast<size_t>(t_out) * width, 0.0f);
  for (long t = 0; t < t_out; ++t) {
    float* row = cols.data() + static_cast<size_t>(t) * width;
    for (long j = 0; j < k; ++j) {
      const long src = t + j - p;
      if (src < 0 || src >= t_in) continue;
      const float* xs = x + static_cast<size_t>(src) * in;
      for (size_t c = 0; c < in; ++c)
        row[c * static_cast<size_t>(k) + static_cast<size_t>(j)] = xs[c];
    }
  }
  std::vector<float> y(static_cast<size_t>(t_out) * static_cast<size_t>(conv.out));
  const Linear lin{conv.weight, conv.bias, static_cast<int>(width), conv.out, nullptr};
  linear(pool, cols.data(), static_cast<size_t>(t_out), lin, y.data());
  return y;
}

std::vector<float> max_pool1d(const float* x, size_t frames, size_t channels, size_t kernel) {
  const size_t t_out = frames / kernel;
  std::vector<float> y(t_out * channels);
  for (size_t t = 0; t < t_out; ++t) {
    float* out = y.data() + t * channels;
    const float* first = x + t * kernel * channels;
    std::copy(first, first + channels, out);
    for (size_t j = 1; j < kernel; ++j) {
      const float* row = first + j * channels;
      // NaN propagates as in PyTorch (a NaN input wins the max).
      for (size_t c = 0; c < channels; ++c)
        if (!(row[c] <= out[c])) out[c] = row[c];
    }
  }
  return y;
}

std::vector<float> lstm_layer(ThreadPool& pool, const float* x, size_t frames,
                              const LstmLayer& layer, std::vector<float>* final_state) {
  const size_t hidden = static_cast<size_t>(layer.hidden), dirs = layer.directions.size();
  const size_t gates = 4 * hidden, width = hidden * dirs;
  std::vector<float> y(frames * width);
  if (final_state) final_state->assign(width, 0.0f);
  std::vector<float> gx(frames * gates), gh(gates), h(hidden), c(hidden);
  for (size_t d = 0; d < dirs; ++d) {
    const LstmDirection& dir = layer.directions[d];
    // Input contributions of all frames in one GEMM; the recurrence is per frame.
    linear(pool, x, frames, dir.input, gx.data());
    std::fill(h.begin(), h.end(), 0.0f);
    std::fill(c.begin(), c.end(), 0.0f);
    for (size_t step = 0; step < frames; ++step) {
      const size_t t = d == 0 ? step : frames - 1 - step;
      linear(pool, h.data(), 1, dir.recurrent, gh.data());
      const float* g = gx.data() + t * gates;
      for (size_t j = 0; j < hidden; ++j) {
        const float i_gate = sigmoid(g[j] + gh[j]);
        const float f_gate = sigmoid(g[hidden + j] + gh[hidden + j]);
        const float cell = std::tanh(g[2 * hidden + j] + gh[2 * hidden + j]);
        const float o_gate = sigmoid(g[3 * hidden + j] + gh[3 * hidden + j]);
        c[j] = f_gate * c[j] + i_gate * cell;
        h[j] = o_gate * std::tanh(c[j]);
      }
      std::copy(h.begin(), h.end(), y.data() + t * width + d * hidden);
    }
    if (final_state) std::copy(h.begin(), h.end(), final_state->data() + d * hidden);
  }
  return y;
}

}  // namespace mmfuse
