// Wav2Vec2ForCTC forward pass. Activations are time-major ([frames, channels]),
// so a conv's im2col row for output t is the contiguous input rows
// [t*stride, t*stride + kernel): every conv (feature encoder and the grouped
// positional conv) is an im2col copy plus a GEMM against weights reordered to
// [out, kernel * in] at load time.
#include "models/wav2vec2.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/gemm.h"
#include "mmfuse/error.h"

namespace mmfuse {

namespace fs = std::filesystem;

namespace {

// y[rows, lin.out] = x[rows, lin.in] W^T + b on the calling thread (the
// callers split rows over the pool themselves).
void linear_serial(const float* x, int rows, const Linear& lin, float* y) {
  const int out = lin.out;
  if (lin.packed != nullptr) {
    for (int s = 0; s < lin.packed->slices(); ++s) {
      if (lin.packed->multiply(x, rows, s, lin.bias, y, out, false)) continue;
      const int n0 = s * PackedLinear::kSliceWidth,
                n1 = std::min(out, n0 + PackedLinear::kSliceWidth);
      sgemm(true, rows, n1 - n0, lin.in, 1.0f, x, lin.in,
            lin.weight + static_cast<size_t>(n0) * lin.in, lin.in, 0.0f, y + n0, out);
      if (lin.bias != nullptr)
        for (int r = 0; r < rows; ++r)
          for (int n = n0; n < n1; ++n) y[static_cast<size_t>(r) * out + n] += lin.bias[n];
    }
    return;
  }
  sgemm(true, rows, out, lin.in, 1.0f, x, lin.in, lin.weight, lin.in, 0.0f, y, out);
  if (lin.bias != nullptr)
    for (int r = 0; r < rows; ++r)
      for (int n = 0; n < out; ++n) y[static_cast<size_t>(r) * out + n] += lin.bias[n];
}

// Rows per im2col block: one packed kernel shape for all full blocks.
constexpr size_t kConvBlock = 64;

// The post-LN (BERT-style) layer of the base encoder, from transformer.h's
// EncoderLayer: ln_attn is applied after the attention residual, ln_mlp after
// the feed-forward residual.
EncoderLayer load_layer(WeightStore& store, const std::string& prefix, const Wav2Vec2Config& c) {
  EncoderLayer l;
  const int h = c.hidden_size;
  l.q = load_linear(store, prefix + ".attention.q_proj", h, h);
  l.k = load_linear(store, prefix + ".attention.k_proj", h, h);
  l.v = load_linear(store, prefix + ".attention.v_proj", h, h);
  l.o = load_linear(store, prefix + ".attention.out_proj", h, h);
  l.ln_attn = load_layer_norm(store, prefix + ".layer_norm", h, c.layer_norm_eps);
  l.fc1 = load_linear(store, prefix + ".feed_forward.intermediate_dense", h, c.intermediate_size);
  l.fc2 = load_linear(store, prefix + ".feed_forward.output_dense", c.intermediate_size, h);
  l.ln_mlp = load_layer_norm(store, prefix + ".final_layer_norm", h, c.layer_norm_eps);
  l.heads = c.num_attention_heads;
  l.act = c.hidden_act;
  return l;
}

}  // namespace

std::unique_ptr<Wav2Vec2ForCtc> Wav2Vec2ForCtc::load(const fs::path& dir, Precision precision) {
  MMFUSE_CHECK(fs::is_directory(dir), not_found, dir.string() + ": model folder not found");
  std::unique_ptr<Wav2Vec2ForCtc> m(new Wav2Vec2ForCtc());
  m->name_ = fs::absolute(dir).lexically_normal().filename().string();
  if (m->name_.empty())
    m->name_ = fs::absolute(dir).lexically_normal().parent_path().filename().string();
  const fs::path config_path = dir / "config.json";
  m->config_ = Wav2Vec2Config::from_json(read_json_file(config_path), config_path.string());
  const fs::path pre = dir / "preprocessor_config.json";
  if (fs::exists(pre))
    m->features_ = Wav2Vec2FeatureConfig::from_json(read_json_file(pre), pre.string());
  m->vocab_ = std::make_unique<CtcVocabulary>(CtcVocabulary::from_folder(dir));
  const Wav2Vec2Config& c = m->config_;
  MMFUSE_CHECK(static_cast<int>(m->vocab_->size()) == c.vocab_size, bad_input,
               (dir / "vocab.json").string() + ": " + std::to_string(m->vocab_->size()) +
                   " tokens but config.json vocab_size is " + std::to_string(c.vocab_size));
  MMFUSE_CHECK(m->vocab_->blank_id() == c.pad_token_id, bad_input,
               (dir / "vocab.json").string() + ": the pad token (CTC blank) has id " +
                   std::to_string(m->vocab_->blank_id()) + " but config.json pad_token_id is " +
                   std::to_string(c.pad_token_id));
  m->store_ = WeightStore::open_folder(dir);
  WeightStore& store = *m->store_;
  store.set_linear_precision(precision);
  store.enable_packed_cache();  // a second load maps the packed layers (io/packed_weight_cache.h)

  // Feature encoder.
  int in = 1;
  for (size_t i = 0; i < c.conv_dim.size(); ++i) {
    const std::string p = "wav2vec2.feature_extractor.conv_layers." + std::to_string(i);
    ConvLayer L;
    L.kernel = c.conv_kernel[i];
    L.stride = c.conv_stride[i];
    L.in = in;
    L.out = c.conv_dim[i];
    const float* w = store.f32(p + ".conv.weight", {L.out, L.in, L.kernel});
    // [out, in, kernel] -> [out, kernel, in]: matches a time-major im2col row.
    L.weight.resize(static_cast<size_t>(L.out) * L.in * L.kernel);
    for (int o = 0; o < L.out; ++o)
      for (int ci = 0; ci < L.in; ++ci)
        for (int k = 0; k < L.kernel; ++k)
          L.weight[(static_cast<size_t>(o) * L.kernel + k) * L.in + ci] =
              w[(static_cast<size_t>(o) * L.in + ci) * L.kernel + k];
    store.release(p + ".conv.weight");  // only the reordered copy is used from now on
    L.conv.weight = L.weight.data();
    L.conv.in = L.kernel * L.in;
    L.conv.out = L.out;
    if (c.conv_bias) L.conv.bias = store.f32(p + ".conv.bias", {L.out});
    pack_linear(L.conv);
    L.has_norm = c.feat_extract_norm_layer || i == 0;
    // nn.LayerNorm / nn.GroupNorm defaults: eps 1e-5 (not config.layer_norm_eps).
    if (L.has_norm) L.norm = load_layer_norm(store, p + ".layer_norm", L.out, 1e-5f);
    m->convs_.push_back(std::move(L));
    m->convs_.back().conv.weight = m->convs_.back().weight.data();
    in = c.conv_dim[i];
  }
  const int h = c.hidden_size;
  m->projection_norm_ =
      load_layer_norm(store, "wav2vec2.feature_projection.layer_norm", in, c.layer_norm_eps);
  m->projection_ = load_linear_exact(store, "wav2vec2.feature_projection.projection", in, h);

  // Positional conv: weight = g * v / ||v||, the norm over (out, in) per tap (weight_norm dim=2).
  const int K = c.num_conv_pos_embeddings, G = c.num_conv_pos_embedding_groups, cg = h / G;
  const std::string pc = "wav2vec2.encoder.pos_conv_embed.conv";
  std::string g_name = pc + ".weight_g", v_name = pc + ".weight_v";
  if (!store.has(g_name) && store.has(pc + ".parametrizations.weight.original0")) {
    g_name = pc + ".parametrizations.weight.original0";
    v_name = pc + ".parametrizations.weight.original1";
  }
  std::vector<float> weight(static_cast<size_t>(h) * cg * K);
  if (store.has(g_name)) {
    const float* g = store.f32(g_name, {1, 1, K});
    const float* v = store.f32(v_name, {h, cg, K});
    for (int k = 0; k < K; ++k) {
      double sq = 0.0;
      for (size_t r = 0; r < static_cast<size_t>(h) * cg; ++r)
        sq += static_cast<double>(v[r * K + k]) * v[r * K + k];
      const double scale = sq > 0 ? g[k] / std::sqrt(sq) : 0.0;
      for (size_t r = 0; r < static_cast<size_t>(h) * cg; ++r)
        weight[r * K + k] = static_cast<float>(v[r * K + k] * scale);
    }
  } else {
    // A checkpoint with weight norm folded in (plain conv.weight).
    MMFUSE_CHECK(store.has(pc + ".weight"), not_found,
                 dir.string() + ": no positional conv weights (" + g_name + " / " + pc +
                     ".parametrizations.weight.original0 / " + pc + ".weight)");
    const float* w = store.f32(pc + ".weight", {h, cg, K});
    std::copy_n(w, weight.size(), weight.begin());
  }
  // [out, in_g, K] -> per group [out_g, K, in_g].
  m->pos_conv_weight_.resize(weight.size());
  for (int o = 0; o < h; ++o)
    for (int ci = 0; ci < cg; ++ci)
      for (int k = 0; k < K; ++k)
        m->pos_conv_weight_[(static_cast<size_t>(o) * K + k) * cg + ci] =
            weight[(static_cast<size_t>(o) * cg + ci) * K + k];
  for (const std::string& n : {g_name, v_name, pc + ".weight"})
    if (store.has(n)) store.release(n);
  m->pos_conv_bias_ = store.f32(pc + ".bias", {h});
  for (int g = 0; g < G; ++g) {
    Linear lin;
    lin.weight = m->pos_conv_weight_.data() + static_cast<size_t>(g) * cg * K * cg;
    lin.bias = m->pos_conv_bias_ + static_cast<size_t>(g) * cg;
    lin.in = K * cg;
    lin.out = cg;
    pack_linear(lin);
    m->pos_conv_.push_back(std::move(lin));
  }
  m->encoder_norm_ = load_layer_norm(store, "wav2vec2.encoder.layer_norm", h, c.layer_norm_eps);
  for (int i = 0; i < c.num_hidden_layers; ++i)
    m->layers_.push_back(load_layer(store, "wav2vec2.encoder.layers." + std::to_string(i), c));
  m->lm_head_ = load_linear_exact(store, "lm_head", h, c.vocab_size);
  m->store_->save_packed_cache();
  return m;
}

double Wav2Vec2ForCtc::frame_seconds() const {
  return static_cast<double>(config_.inputs_to_logits_ratio()) / features_.sampling_rate;
}

std::vector<float> Wav2Vec2ForCtc::input_values(const float* samples, size_t n) const {
  std::vector<float> x(samples, samples + n);
  if (features_.do_normalize) wav2vec2_normalize(x);
  return x;
}

std::vector<float> Wav2Vec2ForCtc::feature_encoder(ThreadPool& pool, const float* input,
                                                   size_t samples, size_t* frames) const {
  const Activation act = config_.feat_extract_activation;
  // conv + bias for output rows [first, first + rows) of layer L reading the
  // time-major rows of `in`: im2col copy of the rows each output sees, then a GEMM.
  auto conv_rows = [](const ConvLayer& L, const float* in, size_t first, size_t rows, float* out,
                      std::vector<float>& cols) {
    const size_t kin = static_cast<size_t>(L.kernel) * L.in,
                 step = static_cast<size_t>(L.stride) * L.in;
    cols.resize(rows * kin);
    for (size_t r = 0; r < rows; ++r)
      std::memcpy(cols.data() + r * kin, in + (first + r) * step, kin * sizeof(float));
    linear_serial(cols.data(), static_cast<int>(rows), L.conv, out);
  };
  // Then the norm (per-row LayerNorm, or GroupNorm's per-channel scale/shift) and the activation.
  auto finish_rows = [&](const ConvLayer& L, float* y, size_t rows, const float* scale,
                         const float* shift) {
    const size_t out = static_cast<size_t>(L.out);
    for (size_t r = 0; r < rows; ++r) {
      float* row = y + r * out;
      if (scale != nullptr) {
        for (size_t ch = 0; ch < out; ++ch) row[ch] = row[ch] * scale[ch] + shift[ch];
      } else if (L.has_norm) {
        kernels::layer_norm_row(row, out, L.norm.weight, L.norm.bias, L.norm.eps, row);
      }
      kernels::activate_span(row, out, act);
    }
  };
  auto out_len = [](const ConvLayer& L, size_t in_len) {
    MMFUSE_ASSERT(in_len >= static_cast<size_t>(L.kernel));
    return (in_len - static_cast<size_t>(L.kernel)) / static_cast<size_t>(L.stride) + 1;
  };

  const ConvLayer& L0 = convs_[0];
  const size_t c0 = static_cast<size_t>(L0.out);
  const size_t len0 = out_len(L0, samples);
  // GroupNorm (one group per channel) of the base layout: statistics of layer 0
  // over the whole clip, from a first pass that keeps nothing but the sums.
  std::vector<float> scale, shift;
  if (L0.has_norm && !config_.feat_extract_norm_layer) {
    const size_t workers = static_cast<size_t>(pool.size());
    std::vector<double> sums(workers * c0 * 2, 0.0);
    pool.parallel_for((len0 + kConvBlock - 1) / kConvBlock, [&](size_t b0, size_t b1, int w) {
      thread_local std::vector<float> cols, y;
      y.resize(kConvBlock * c0);
      double* s = sums.data() + static_cast<size_t>(w) * c0 * 2;
      for (size_t b = b0; b < b1; ++b) {
        const size_t t0 = b * kConvBlock, rows = std::min(kConvBlock, len0 - t0);
        conv_rows(L0, input, t0, rows, y.data(), cols);
        for (size_t r = 0; r < rows; ++r)
          for (size_t ch = 0; ch < c0; ++ch) {
            const double v = y[r * c0 + ch];
            s[ch] += v;
            s[c0 + ch] += v * v;
          }
      }
    });
    scale.resize(c0);
    shift.resize(c0);
    for (size_t ch = 0; ch < c0; ++ch) {
      double sum = 0, sq = 0;
      for (size_t w = 0; w < workers; ++w) {
        sum += sums[w * c0 * 2 + ch];
        sq += sums[w * c0 * 2 + c0 + ch];
      }
      const double mean = sum / static_cast<double>(len0);
      const double var = std::max(0.0, sq / static_cast<double>(len0) - mean * mean);
      const double inv = 1.0 / std::sqrt(var + L0.norm.eps);
      scale[ch] = static_cast<float>(inv * L0.norm.weight[ch]);
      shift[ch] = static_cast<float>(L0.norm.bias[ch] - mean * inv * L0.norm.weight[ch]);
    }
  }
  const float* sc = scale.empty() ? nullptr : scale.data();
  const float* sh = shift.empty() ? nullptr : shift.data();

  std::vector<float> cur, next;
  size_t len = 0;
  size_t li = 0;
  if (convs_.size() == 1) {
    cur.resize(len0 * c0);
    pool.parallel_for((len0 + kConvBlock - 1) / kConvBlock, [&](size_t b0, size_t b1, int) {
      thread_local std::vector<float> cols;
      for (size_t b = b0; b < b1; ++b) {
        const size_t t0 = b * kConvBlock, rows = std::min(kConvBlock, len0 - t0);
        conv_rows(L0, input, t0, rows, cur.data() + t0 * c0, cols);
        finish_rows(L0, cur.data() + t0 * c0, rows, sc, sh);
      }
    });
    len = len0;
    li = 1;
  } else {
    // Layers 0 and 1 fused: layer 0 (the longest output, 512 x samples/5
    // floats) is computed block by block for the rows layer 1 needs, never whole.
    const ConvLayer& L1 = convs_[1];
    const size_t c1 = static_cast<size_t>(L1.out);
    const size_t len1 = out_len(L1, len0);
    cur.resize(len1 * c1);
    pool.parallel_for((len1 + kConvBlock - 1) / kConvBlock, [&](size_t b0, size_t b1, int) {
      thread_local std::vector<float> cols, y0;
      for (size_t b = b0; b < b1; ++b) {
        const size_t t0 = b * kConvBlock, rows = std::min(kConvBlock, len1 - t0);
        const size_t first0 = t0 * static_cast<size_t>(L1.stride);
        const size_t n0 =
            (rows - 1) * static_cast<size_t>(L1.stride) + static_cast<size_t>(L1.kernel);
        y0.resize(n0 * c0);
        conv_rows(L0, input, first0, n0, y0.data(), cols);
        finish_rows(L0, y0.data(), n0, sc, sh);
        conv_rows(L1, y0.data(), 0, rows, cur.data() + t0 * c1, cols);
        finish_rows(L1, cur.data() + t0 * c1, rows, nullptr, nullptr);
      }
    });
    len = len1;
    li = 2;
  }
  for (; li < convs_.size(); ++li) {
    const ConvLayer& L = convs_[li];
    const size_t out = static_cast<size_t>(L.out);
    const size_t t_out = out_len(L, len);
    next.resize(t_out * out);
    pool.parallel_for((t_out + kConvBlock - 1) / kConvBlock, [&](size_t b0, size_t b1, int) {
      thread_local std::vector<float> cols;
      for (size_t b = b0; b < b1; ++b) {
        const size_t t0 = b * kConvBlock, rows = std::min(kConvBlock, t_out - t0);
        conv_rows(L, cur.data(), t0, rows, next.data() + t0 * out, cols);
        finish_rows(L, next.data() + t0 * out, rows, nullptr, nullptr);
      }
    });
    cur.swap(next);
    len = t_out;
  }
  *frames = len;
  return cur;
}

void Wav2Vec2ForCtc::positional_conv(ThreadPool& pool, const float* x, size_t frames,
                                     float* out) const {
  const size_t h = static_cast<size_t>(config_.hidden_size);
  const size_t K = static_cast<size_t>(config_.num_conv_pos_embeddings);
  const size_t G = static_cast<size_t>(config_.num_conv_pos_embedding_groups), cg = h / G;
  const size_t pad = K / 2;
  // Output t (of T + 1 - (K even), the last dropped for even K) sees inputs
  // t - pad .. t - pad + K - 1, zero outside [0, frames).
  const size_t blocks = (frames + kConvBlock - 1) / kConvBlock;
  pool.parallel_for(G * blocks, [&](size_t j0, size_t j1, int) {
    thread_local std::vector<float> cols, y;
    cols.resize(kConvBlock * K * cg);
    y.resize(kConvBlock * cg);
    for (size_t j = j0; j < j1; ++j) {
      const size_t g = j / blocks, b = j % blocks;
      const size_t t0 = b * kConvBlock, rows = std::min(kConvBlock, frames - t0);
      for (size_t r = 0; r < rows; ++r) {
        float* dst = cols.data() + r * K * cg;
        const long t = static_cast<long>(t0 + r);
        for (size_t k = 0; k < K; ++k) {
          const long src = t - static_cast<long>(pad) + static_cast<long>(k);
          if (src < 0 || src >= static_cast<long>(frames))
            std::memset(dst + k * cg, 0, cg * sizeof(float));
          else
            std::memcpy(dst + k * cg, x + static_cast<size_t>(src) * h + g * cg,
                        cg * sizeof(float));
        }
      }
      linear_serial(cols.data(), static_cast<int>(rows), pos_conv_[g], y.data());
      for (size_t r = 0; r < rows; ++r) {
        float* row = y.data() + r * cg;
        kernels::activate_span(row, cg, config_.feat_extract_activation);
        std::memcpy(out + (t0 + r) * h + g * cg, row, cg * sizeof(float));
      }
    }
  });
}

std::vector<float> Wav2Vec2ForCtc::logits(ThreadPool& pool, const float* input_values,
                                          size_t samples, Wav2Vec2Trace* trace) const {
  const size_t need = config_.receptive_field();
  MMFUSE_CHECK(samples >= need, bad_input,
               "audio too short: " + std::to_string(samples) +
                   " samples, the model needs at least " + std::to_string(need) + " (one frame)");
  size_t frames = 0;
  std::vector<float> conv = feature_encoder(pool, input_values, samples, &frames);
  const size_t h = static_cast<size_t>(config_.hidden_size);
  layer_norm(pool, conv.data(), frames, projection_norm_, conv.data());
  if (trace != nullptr) trace->extract_features = conv;
  std::vector<float> x(frames * h);
  linear(pool, conv.data(), frames, projection_, x.data());
  conv.clear();
  conv.shrink_to_fit();

  std::vector<float> pos(frames * h);
  positional_conv(pool, x.data(), frames, pos.data());
  add_inplace(pool, x.data(), pos.data(), x.size());
  pos.clear();
  pos.shrink_to_fit();

  PackedSequences seqs;
  seqs.offsets = {0, frames};
  AttentionOptions attn;
  attn.heads = config_.num_attention_heads;
  attn.head_dim = config_.hidden_size / config_.num_attention_heads;
  EncoderWorkspace ws;
  auto keep = [&] {
    if (trace != nullptr) trace->hidden_states.push_back(x);
  };
  if (config_.do_stable_layer_norm) {
    for (const auto& layer : layers_) {
      keep();
      pre_ln_encoder_layer(pool, x.data(), seqs, layer, attn, ws);
    }
    layer_norm(pool, x.data(), frames, encoder_norm_, x.data());
  } else {
    layer_norm(pool, x.data(), frames, encoder_norm_, x.data());
    for (const auto& layer : layers_) {
      keep();
      post_ln_encoder_layer(pool, x.data(), seqs, layer, attn, ws);
    }
  }
  keep();
  std::vector<float> logits(frames * static_cast<size_t>(config_.vocab_size));
  linear(pool, x.data(), frames, lm_head_, logits.data());
  return logits;
}

std::vector<ChunkPlan> plan_chunks(size_t samples, int rate, const Wav2Vec2Config& config,
                                   const ChunkOptions& opt) {
  const size_t ratio = static_cast<size_t>(config.inputs_to_logits_ratio());
  MMFUSE_CHECK(std::isfinite(opt.chunk_s) && std::isfinite(opt.stride_s) && opt.chunk_s >= 0 &&
                   opt.stride_s >= 0 && opt.chunk_s < 1e6 && opt.stride_s < 1e6,
               bad_input, "chunk and stride lengths must be finite seconds >= 0");
  const size_t total = config.frames_for(samples);
  const size_t chunk =
      static_cast<size_t>(std::llround(opt.chunk_s * rate / static_cast<double>(ratio))) * ratio;
  const size_t stride =
      static_cast<size_t>(std::llround(opt.stride_s * rate / static_cast<double>(ratio))) * ratio;
  if (opt.chunk_s == 0 || samples <= chunk) return {ChunkPlan{0, samples, 0, 0, total}};
  MMFUSE_CHECK(stride >= ratio, bad_input,
               "chunk stride must be at least one frame (" +
                   std::to_string(static_cast<double>(ratio) / rate) + " s) when chunking");
  MMFUSE_CHECK(chunk > 2 * stride && chunk >= config.receptive_field(), bad_input,
               "chunk length must exceed twice the chunk stride");
  std::vector<ChunkPlan> plan;
  size_t next_frame = 0;  // first global frame not yet owned
  for (size_t start = 0; start < samples; start += chunk - 2 * stride) {
    ChunkPlan c;
    c.sample_begin = start;
    c.sample_end = std::min(samples, start + chunk);
    const bool last = c.sample_end == samples;
    c.first_frame = start / ratio;
    c.own_begin = next_frame;
    // A chunk owns its frames up to the start of its right stride (all, if last);
    // the next chunk's left stride ends exactly there.
    c.own_end = last ? total : (start + chunk - stride) / ratio;
    MMFUSE_ASSERT(c.own_begin >= c.first_frame &&
                  c.own_end <= c.first_frame + config.frames_for(c.sample_end - c.sample_begin));
    next_frame = c.own_end;
    plan.push_back(c);
    if (last) break;
  }
  MMFUSE_ASSERT(next_frame == total);
  return plan;
}

std::vector<float> Wav2Vec2ForCtc::transcribe_logits(ThreadPool& pool,
                                                     const std::vector<float>& samples,
                                                     const ChunkOptions& opt,
                                                     const std::string& name) const {
  const size_t need = config_.receptive_field();
  MMFUSE_CHECK(samples.size() >= need, bad_input,
               name + ": audio too short: " + std::to_string(samples.size()) + " samples at " +
                   std::to_string(features_.sampling_rate) + " Hz, the model needs at least " +
                   std::to_string(need) + " (one frame)");
  const std::vector<ChunkPlan> plan =
      plan_chunks(samples.size(), features_.sampling_rate, config_, opt);
  const size_t vocab = static_cast<size_t>(config_.vocab_size);
  if (plan.size() == 1) {
    std::vector<float> x = input_values(samples.data(), samples.size());
    return logits(pool, x.data(), x.size());
  }
  std::vector<float> out;
  out.reserve(plan.back().own_end * vocab);
  for (const ChunkPlan& c : plan) {
    // Each chunk is feature-extracted (normalised) on its own, as the HF pipeline does.
    std::vector<float> x =
        input_values(samples.data() + c.sample_begin, c.sample_end - c.sample_begin);
    std::vector<float> lg = logits(pool, x.data(), x.size());
    out.insert(out.end(), lg.begin() + static_cast<long>((c.own_begin - c.first_frame) * vocab),
               lg.begin() + static_cast<long>((c.own_end - c.first_frame) * vocab));
  }
  return out;
}

}  // namespace mmfuse
