#include "models/t5.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/gemm.h"
#include "core/ops.h"
#include "mmfuse/error.h"
#include "models/kv_cache.h"

namespace mmfuse {

namespace {

T5Config::Activation parse_t5_activation(const std::string& name, const std::string& where,
                                         const std::string& field) {
  using A = T5Config::Activation;
  if (name == "relu") return A::relu;
  if (name == "gelu") return A::gelu;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") return A::gelu_tanh;
  if (name == "silu" || name == "swish") return A::silu;
  throw_error(ErrorKind::unsupported, where + ": field \"" + field + "\": activation \"" + name +
                                          "\" is not supported (relu, gelu, gelu_new, silu are)");
}

void rms_norm_row(const float* x, size_t dim, const float* weight, float eps, float* y) {
  double sum = 0.0;
  for (size_t i = 0; i < dim; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float variance = static_cast<float>(sum / static_cast<double>(dim));
  const float scale = 1.0f / std::sqrt(variance + eps);
  for (size_t i = 0; i < dim; ++i) y[i] = weight[i] * (x[i] * scale);
}

// One head of one sequence: out[rows, d] = softmax(q k^T + bias) v, unscaled
// as T5 is. `bias(j, row)` adds row j's position bias to its scores and
// returns how many keys row j sees (the others get weight 0).
template <class Bias>
void attend_head(const float* q, size_t ldq, const float* k, const float* v, size_t ldkv,
                 size_t rows, size_t keys, size_t d, Bias&& bias, float* out, size_t ldo) {
  std::vector<float> scores(rows * keys);
  sgemm(true, static_cast<int>(rows), static_cast<int>(keys), static_cast<int>(d), 1.0f, q,
        static_cast<int>(ldq), k, static_cast<int>(ldkv), 0.0f, scores.data(),
        static_cast<int>(keys));
  for (size_t j = 0; j < rows; ++j) {
    float* row = scores.data() + j * keys;
    const size_t visible = bias(j, row);
    float max = -std::numeric_limits<float>::infinity();
    for (size_t t = 0; t < visible; ++t) max = std::max(max, row[t]);
    float sum = 0.0f;
    for (size_t t = 0; t < visible; ++t) {
      row[t] = std::exp(row[t] - max);
      sum += row[t];
    }
    for (size_t t = 0; t < visible; ++t) row[t] /= sum;
    for (size_t t = visible; t < keys; ++t) row[t] = 0.0f;
  }
  sgemm(false, static_cast<int>(rows), static_cast<int>(d), static_cast<int>(keys), 1.0f,
        scores.data(), static_cast<int>(keys), v, static_cast<int>(ldkv), 0.0f, out,
        static_cast<int>(ldo));
}

// The cross-attention keys and values of every decoder layer, [length, inner]:
// computed once from the encoder output, shared by a sequence's clones.
struct T5CrossCache {
  size_t length = 0;
  std::vector<std::vector<float>> k, v;
};

class T5State final : public KvCacheState {
 public:
  T5State(size_t layers, std::shared_ptr<const T5CrossCache> encoder_kv)
      : KvCacheState(layers), cross(std::move(encoder_kv)) {}
  std::unique_ptr<DecoderState> clone() const override { return std::make_unique<T5State>(*this); }
  size_t cache_bytes() const override {
    size_t n = KvCacheState::cache_bytes();
    for (size_t i = 0; i < cross->k.size(); ++i)
      n += (cross->k[i].size() + cross->v[i].size()) * sizeof(float);
    return n;
  }
  std::shared_ptr<const T5CrossCache> cross;  // shared by the clones beam search makes
};

}  // namespace

int t5_relative_position_bucket(int64_t relative_position, bool bidirectional, int num_buckets,
                                int max_distance) {
  int bucket = 0;
  int64_t distance = 0;
  if (bidirectional) {
    num_buckets /= 2;
    if (relative_position > 0) bucket += num_buckets;
    distance = relative_position < 0 ? -relative_position : relative_position;
  } else {
    distance = relative_position < 0 ? -relative_position : 0;
  }
  const int max_exact = num_buckets / 2;
  if (distance < max_exact) return bucket + static_cast<int>(distance);
  // float32 as torch computes it: log(d / max_exact) / log(max_distance / max_exact)
  // * (num_buckets - max_exact), truncated toward zero.
  const float ratio = static_cast<float>(distance) / static_cast<float>(max_exact);
  const float scale = static_cast<float>(
      std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)));
  const float large_f = std::log(ratio) / scale * static_cast<float>(num_buckets - max_exact);
  const int64_t large = max_exact + static_cast<int64_t>(large_f);
  return bucket + static_cast<int>(std::min<int64_t>(large, num_buckets - 1));
}

T5Config T5Config::from_json(const nlohmann::json& config, const std::string& where) {
  MMFUSE_CHECK(config.is_object(), bad_input, where + ": must be a JSON object");
  const JsonFields f(config, where);
  const std::string model_type = f.string("model_type", "t5");
  MMFUSE_CHECK(model_type == "t5" || model_type == "mt5", unsupported,
               where + ": field \"model_type\" is \"" + model_type + "\", not t5");
  T5Config c;
  c.vocab_size = f.positive("vocab_size", c.vocab_size);
  c.d_model = f.positive("d_model", c.d_model);
  c.d_kv = f.positive("d_kv", c.d_kv);
  c.d_ff = f.positive("d_ff", c.d_ff);
  c.num_layers = f.positive("num_layers", c.num_layers);
  c.num_decoder_layers = f.positive("num_decoder_layers", c.num_layers);
  c.num_heads = f.positive("num_heads", c.num_heads);
  c.relative_attention_num_buckets =
      f.positive("relative_attention_num_buckets", c.relative_attention_num_buckets);
  c.relative_attention_max_distance =
      f.positive("relative_attention_max_distance", c.relative_attention_max_distance);
  // Fewer buckets, or a max distance inside the exact range, make transformers
  // divide by zero (log of 0 or by log 1) in the bucket formula.
  MMFUSE_CHECK(c.relative_attention_num_buckets >= 4, bad_input,
               where + ": field \"relative_attention_num_buckets\" must be at least 4");
  MMFUSE_CHECK(c.relative_attention_max_distance > c.relative_attention_num_buckets / 2, bad_input,
               where +
                   ": field \"relative_attention_max_distance\" must exceed "
                   "relative_attention_num_buckets / 2");
  const double eps = f.number("layer_norm_epsilon", c.layer_norm_epsilon);
  MMFUSE_CHECK(eps >= 0.0 && eps < 1.0, bad_input,
               where + ": field \"layer_norm_epsilon\" must be in [0, 1)");
  c.layer_norm_epsilon = static_cast<float>(eps);

  // T5Config.__init__: feed_forward_proj is "ACT" or "gated-ACT"; "gated-gelu"
  // means gelu_new. A dense_act_fn / is_gated_act written in config.json is
  // set after that (PretrainedConfig keeps extra keys) and so wins.
  const std::string proj = f.string("feed_forward_proj", "relu");
  const size_t dash = proj.find('-');
  const bool two_parts = dash != std::string::npos;
  MMFUSE_CHECK(!two_parts || (proj.substr(0, dash) == "gated" &&
                              proj.find('-', dash + 1) == std::string::npos),
               bad_input,
               where + ": field \"feed_forward_proj\" is \"" + proj +
                   "\"; it must be \"ACT\" or \"gated-ACT\" (e.g. relu, gated-gelu)");
  std::string act = two_parts ? proj.substr(dash + 1) : proj;
  std::string act_field = "feed_forward_proj";
  c.gated = two_parts;
  if (proj == "gated-gelu") act = "gelu_new";
  if (f.has("dense_act_fn")) act = f.string("dense_act_fn", act), act_field = "dense_act_fn";
  c.gated = f.boolean("is_gated_act", c.gated);
  c.activation = parse_t5_activation(act, where, act_field);

  c.tie_word_embeddings = f.boolean("tie_word_embeddings", true);
  c.pad_token_id = f.token_id("pad_token_id", 0, c.vocab_size);
  c.bos_token_id = f.token_id("bos_token_id", -1, c.vocab_size);
  c.eos_token_ids = f.token_ids("eos_token_id", {1}, c.vocab_size);
  // generate()'s _get_decoder_start_token_id: decoder_start_token_id, else bos_token_id.
  c.decoder_start_token_id = f.token_id("decoder_start_token_id", c.bos_token_id, c.vocab_size);
  MMFUSE_CHECK(c.decoder_start_token_id >= 0, bad_input,
               where + ": field \"decoder_start_token_id\" is not set (nor bos_token_id)");
  c.max_positions = kT5DefaultMaxPositions;
  return c;
}

struct T5Model::Slice {
  T5State* state = nullptr;
  size_t row0 = 0, rows = 0, pos0 = 0;
};

T5Model::T5Model(WeightStore& store, const T5Config& config, const std::string& prefix,
                 std::shared_ptr<ThreadPool> pool, std::string name)
    : config_(config), pool_(std::move(pool)), name_(std::move(name)) {
  MMFUSE_CHECK(config.max_positions > 0, bad_input, name_ + ": max_positions must be positive");
  const int d = config.d_model, inner = config.inner_dim(), ff = config.d_ff;
  auto norm_of = [&](const std::string& tensor) {
    const float* w = store.f32(tensor, {d});
    return std::vector<float>(w, w + d);
  };
  auto attention_of = [&](const std::string& p, const std::string& kind) {
    Attention a;
    a.norm = norm_of(p + "layer_norm.weight");
    a.q = store.typed_linear(p + kind + ".q", d, inner, false);
    a.k = store.typed_linear(p + kind + ".k", d, inner, false);
    a.v = store.typed_linear(p + kind + ".v", d, inner, false);
    a.o = store.typed_linear(p + kind + ".o", inner, d, false);
    return a;
  };
  auto ffn_of = [&](const std::string& p) {
    FeedForward m;
    m.norm = norm_of(p + "layer_norm.weight");
    if (config.gated) {
      m.wi_0 = store.typed_linear(p + "DenseReluDense.wi_0", d, ff, false);
      m.wi_1 = store.typed_linear(p + "DenseReluDense.wi_1", d, ff, false);
    } else {
      m.wi_0 = store.typed_linear(p + "DenseReluDense.wi", d, ff, false);
    }
    m.wo = store.typed_linear(p + "DenseReluDense.wo", ff, d, false);
    return m;
  };

  // The encoder's and decoder's embed_tokens are tied to `shared` (and absent
  // from files written by save_pretrained); older files may hold only them.
  const std::string shared_name =
      store.has(prefix + "shared.weight") || !store.has(prefix + "encoder.embed_tokens.weight")
          ? prefix + "shared"
          : prefix + "encoder.embed_tokens";
  shared_ = store.typed_linear(shared_name, d, config.vocab_size, false);
  for (int i = 0; i < config.num_layers; ++i) {
    const std::string p = prefix + "encoder.block." + std::to_string(i) + ".layer.";
    encoder_.push_back({attention_of(p + "0.", "SelfAttention"), ffn_of(p + "1.")});
  }
  for (int i = 0; i < config.num_decoder_layers; ++i) {
    const std::string p = prefix + "decoder.block." + std::to_string(i) + ".layer.";
    decoder_.push_back({attention_of(p + "0.", "SelfAttention"),
                        attention_of(p + "1.", "EncDecAttention"), ffn_of(p + "2.")});
  }
  encoder_final_norm_ = norm_of(prefix + "encoder.final_layer_norm.weight");
  decoder_final_norm_ = norm_of(prefix + "decoder.final_layer_norm.weight");
  if (config.tie_word_embeddings) {
    lm_head_ = shared_;
  } else {
    MMFUSE_CHECK(store.has(prefix + "lm_head.weight"), bad_input,
                 store.describe_source(prefix + "lm_head.weight") + ": missing tensor \"" + prefix +
                     "lm_head.weight\" (tie_word_embeddings is false)");
    lm_head_ = store.typed_linear(prefix + "lm_head", d, config.vocab_size, false);
  }

  // Layer 0's bias tables, expanded by relative position once.
  const size_t heads = static_cast<size_t>(config.num_heads);
  const size_t m = config.max_positions;
  const int buckets = config.relative_attention_num_buckets;
  auto table_of = [&](const std::string& stack) {
    return store.f32(
        prefix + stack + ".block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        {buckets, config.num_heads});
  };
  const float* enc_table = table_of("encoder");
  const float* dec_table = table_of("decoder");
  encoder_bias_.resize(heads * (2 * m - 1));
  decoder_bias_.resize(heads * m);
  for (size_t r = 0; r < 2 * m - 1; ++r) {
    const int b =
        t5_relative_position_bucket(static_cast<int64_t>(r) - static_cast<int64_t>(m - 1), true,
                                    buckets, config.relative_attention_max_distance);
    for (size_t h = 0; h < heads; ++h)
      encoder_bias_[h * (2 * m - 1) + r] = enc_table[static_cast<size_t>(b) * heads + h];
  }
  for (size_t dist = 0; dist < m; ++dist) {
    const int b = t5_relative_position_bucket(-static_cast<int64_t>(dist), false, buckets,
                                              config.relative_attention_max_distance);
    for (size_t h = 0; h < heads; ++h)
      decoder_bias_[h * m + dist] = dec_table[static_cast<size_t>(b) * heads + h];
  }
}

size_t T5Model::weight_bytes() const {
  size_t n = 0;
  auto ffn_bytes = [](const FeedForward& f) {
    return f.wi_0.bytes() + (f.wi_1.weight ? f.wi_1.bytes() : 0) + f.wo.bytes();
  };
  for (const auto& l : decoder_)
    n += l.self.q.bytes() + l.self.k.bytes() + l.self.v.bytes() + l.self.o.bytes() +
         l.cross.q.bytes() + l.cross.o.bytes() + ffn_bytes(l.ffn);
  return n + lm_head_.bytes();
}

void T5Model::embed(int32_t token, float* out) const {
  MMFUSE_CHECK(token >= 0 && token < config_.vocab_size, bad_input,
               "token id " + std::to_string(token) + " is outside the vocabulary (0.." +
                   std::to_string(config_.vocab_size - 1) + ")");
  typed_row(shared_.type, shared_.weight, static_cast<size_t>(token),
            static_cast<size_t>(config_.d_model), out);
}

std::vector<float> T5Model::embed_prompt(const PromptInput& prompt) const {
  const size_t d = static_cast<size_t>(config_.d_model);
  const size_t length = prompt.length();
  MMFUSE_CHECK(length > 0, bad_input, "the prompt is empty");
  MMFUSE_CHECK(length <= max_positions(), bad_input,
               "the prompt has " + std::to_string(length) + " positions; " + name_ +
                   " takes at most " + std::to_string(max_positions()));
  return embed_prompt_segments(prompt, d,
                               [this](int32_t id, float* row) { embed(id, row); });
}

void T5Model::feed_forward(const FeedForward& ffn, float* x, size_t rows) const {
  const size_t d = static_cast<size_t>(config_.d_model);
  const size_t ff = static_cast<size_t>(config_.d_ff);
  std::vector<float> normed(rows * d), a(rows * ff);
  for (size_t r = 0; r < rows; ++r)
    rms_norm_row(x + r * d, d, ffn.norm.data(), config_.layer_norm_epsilon, &normed[r * d]);
  std::vector<float> b;
  if (config_.gated) {
    b.resize(rows * ff);
    typed_linears(*pool_, normed.data(), rows, {{&ffn.wi_0, a.data()}, {&ffn.wi_1, b.data()}});
  } else {
    typed_linear(*pool_, normed.data(), rows, ffn.wi_0, a.data());
  }
  switch (config_.activation) {
    case T5Config::Activation::relu:
      kernels::activate_span(a.data(), a.size(), Activation::relu);
      break;
    case T5Config::Activation::gelu:
      kernels::activate_span(a.data(), a.size(), Activation::gelu);
      break;
    case T5Config::Activation::gelu_tanh:
      kernels::activate_span(a.data(), a.size(), Activation::gelu_tanh);
      break;
    case T5Config::Activation::silu:
      for (float& v : a) v = v / (1.0f + std::exp(-v));
      break;
  }
  if (config_.gated)
    for (size_t i = 0; i < a.size(); ++i) a[i] *= b[i];
  typed_linear(*pool_, a.data(), rows, ffn.wo, x, /*accumulate=*/true);
}

void T5Model::run_encoder(float* x, size_t length) const {
  const size_t d = static_cast<size_t>(config_.d_model);
  const size_t heads = static_cast<size_t>(config_.num_heads),
               hd = static_cast<size_t>(config_.d_kv);
  const size_t inner = heads * hd, m = config_.max_positions, span = 2 * m - 1;
  std::vector<float> normed(length * d), q(length * inner), k(length * inner), v(length * inner),
      context(length * inner);
  for (const EncoderLayer& layer : encoder_) {
    const Attention& a = layer.self;
    for (size_t r = 0; r < length; ++r)
      rms_norm_row(x + r * d, d, a.norm.data(), config_.layer_norm_epsilon, &normed[r * d]);
    typed_linears(*pool_, normed.data(), length,
                  {{&a.q, q.data()}, {&a.k, k.data()}, {&a.v, v.data()}});
    pool_->parallel_tasks(heads, [&](size_t h, int) {
      // Query j, key t: the bias of relative position t - j.
      const float* bias = &encoder_bias_[h * span + (m - 1)];
      attend_head(
          &q[h * hd], inner, &k[h * hd], &v[h * hd], inner, length, length, hd,
          [&](size_t j, float* row) {
            const float* b = bias - j;
            for (size_t t = 0; t < length; ++t) row[t] += b[t];
            return length;
          },
          &context[h * hd], inner);
    });
    typed_linear(*pool_, context.data(), length, a.o, x, /*accumulate=*/true);
    feed_forward(layer.ffn, x, length);
  }
  for (size_t r = 0; r < length; ++r)
    rms_norm_row(x + r * d, d, encoder_final_norm_.data(), config_.layer_norm_epsilon, x + r * d);
}

std::unique_ptr<DecoderState> T5Model::start_state(const float* encoder_out, size_t length) const {
  const size_t inner = static_cast<size_t>(config_.inner_dim());
  auto cross = std::make_shared<T5CrossCache>();
  cross->length = length;
  cross->k.resize(decoder_.size());
  cross->v.resize(decoder_.size());
  for (size_t li = 0; li < decoder_.size(); ++li) {
    cross->k[li].resize(length * inner);
    cross->v[li].resize(length * inner);
    typed_linears(*pool_, encoder_out, length,
                  {{&decoder_[li].cross.k, cross->k[li].data()},
                   {&decoder_[li].cross.v, cross->v[li].data()}});
  }
  auto state = std::make_unique<T5State>(decoder_.size(), std::move(cross));
  for (size_t li = 0; li < decoder_.size(); ++li) {
    state->k[li].reserve(64 * inner);
    state->v[li].reserve(64 * inner);
  }
  return state;
}

void T5Model::run_decoder(float* x, std::vector<Slice>& slices) const {
  const size_t d = static_cast<size_t>(config_.d_model);
  const size_t heads = static_cast<size_t>(config_.num_heads),
               hd = static_cast<size_t>(config_.d_kv);
  const size_t inner = heads * hd, m = config_.max_positions;
  size_t rows = 0;
  for (const Slice& s : slices) rows = std::max(rows, s.row0 + s.rows);
  std::vector<float> normed(rows * d), q(rows * inner), k(rows * inner), v(rows * inner),
      context(rows * inner);

  for (size_t li = 0; li < decoder_.size(); ++li) {
    const DecoderLayer& layer = decoder_[li];
    // Self-attention over the sequence's positions so far (causal): query
    // position p sees key t <= p with the bias of distance p - t, which is
    // what HF's compute_bias gives the last row when it runs with a cache.
    const Attention& sa = layer.self;
    for (size_t r = 0; r < rows; ++r)
      rms_norm_row(x + r * d, d, sa.norm.data(), config_.layer_norm_epsilon, &normed[r * d]);
    typed_linears(*pool_, normed.data(), rows,
                  {{&sa.q, q.data()}, {&sa.k, k.data()}, {&sa.v, v.data()}});
    for (Slice& s : slices) {
      auto& kc = s.state->k[li];
      auto& vc = s.state->v[li];
      kc.insert(kc.end(), k.begin() + static_cast<long>(s.row0 * inner),
                k.begin() + static_cast<long>((s.row0 + s.rows) * inner));
      vc.insert(vc.end(), v.begin() + static_cast<long>(s.row0 * inner),
                v.begin() + static_cast<long>((s.row0 + s.rows) * inner));
    }
    pool_->parallel_tasks(slices.size() * heads, [&](size_t task, int) {
      const Slice& s = slices[task / heads];
      const size_t h = task % heads;
      const float* bias = &decoder_bias_[h * m];
      attend_head(
          &q[s.row0 * inner + h * hd], inner, s.state->k[li].data() + h * hd,
          s.state->v[li].data() + h * hd, inner, s.rows, s.pos0 + s.rows, hd,
          [&](size_t j, float* row) {
            const size_t p = s.pos0 + j;
            for (size_t t = 0; t <= p; ++t) row[t] += bias[p - t];
            return p + 1;
          },
          &context[s.row0 * inner + h * hd], inner);
    });
    typed_linear(*pool_, context.data(), rows, sa.o, x, /*accumulate=*/true);

    // Cross-attention to the encoder output: no position bias, no mask.
    const Attention& ca = layer.cross;
    for (size_t r = 0; r < rows; ++r)
      rms_norm_row(x + r * d, d, ca.norm.data(), config_.layer_norm_epsilon, &normed[r * d]);
    typed_linear(*pool_, normed.data(), rows, ca.q, q.data());
    pool_->parallel_tasks(slices.size() * heads, [&](size_t task, int) {
      const Slice& s = slices[task / heads];
      const size_t h = task % heads;
      const T5CrossCache& cross = *s.state->cross;
      attend_head(
          &q[s.row0 * inner + h * hd], inner, cross.k[li].data() + h * hd,
          cross.v[li].data() + h * hd, inner, s.rows, cross.length, hd,
          [&](size_t, float*) { return cross.length; }, &context[s.row0 * inner + h * hd], inner);
    });
    typed_linear(*pool_, context.data(), rows, ca.o, x, /*accumulate=*/true);

    feed_forward(layer.ffn, x, rows);
  }
  for (Slice& s : slices) s.state->filled += s.rows;
}

void T5Model::head(float* x, size_t rows, float* logits) const {
  const size_t d = static_cast<size_t>(config_.d_model);
  // T5ForConditionalGeneration rescales before a tied head (Mesh TensorFlow's convention).
  const float rescale = config_.tie_word_embeddings
                            ? static_cast<float>(std::pow(static_cast<double>(d), -0.5))
                            : 1.0f;
  for (size_t r = 0; r < rows; ++r) {
    float* row = x + r * d;
    rms_norm_row(row, d, decoder_final_norm_.data(), config_.layer_norm_epsilon, row);
    if (config_.tie_word_embeddings)
      for (size_t i = 0; i < d; ++i) row[i] *= rescale;
  }
  typed_linear(*pool_, x, rows, lm_head_, logits);
}

std::vector<float> T5Model::encode(const PromptInput& prompt) const {
  std::vector<float> x = embed_prompt(prompt);
  run_encoder(x.data(), prompt.length());
  return x;
}

std::unique_ptr<DecoderState> T5Model::prefill(const PromptInput& prompt, float* logits,
                                               const LoraAdapter* adapter) const {
  MMFUSE_CHECK(adapter == nullptr, unsupported, name_ + ": LoRA adapters are not supported for T5");
  const std::vector<float> encoded = encode(prompt);
  std::unique_ptr<DecoderState> state = start_state(encoded.data(), prompt.length());
  std::vector<float> x(static_cast<size_t>(config_.d_model));
  embed(config_.decoder_start_token_id, x.data());
  std::vector<Slice> slices{{static_cast<T5State*>(state.get()), 0, 1, 0}};
  run_decoder(x.data(), slices);
  head(x.data(), 1, logits);
  return state;
}

std::vector<float> T5Model::decoder_logits(const PromptInput& prompt,
                                           const std::vector<int32_t>& decoder_ids) const {
  MMFUSE_CHECK(!decoder_ids.empty(), bad_input, "decoder_logits: no decoder ids");
  MMFUSE_CHECK(decoder_ids.size() <= max_positions(), bad_input,
               "decoder_logits: more decoder ids than " + std::to_string(max_positions()));
  const size_t d = static_cast<size_t>(config_.d_model);
  const std::vector<float> encoded = encode(prompt);
  std::unique_ptr<DecoderState> state = start_state(encoded.data(), prompt.length());
  std::vector<float> x(decoder_ids.size() * d);
  for (size_t i = 0; i < decoder_ids.size(); ++i) embed(decoder_ids[i], &x[i * d]);
  std::vector<Slice> slices{{static_cast<T5State*>(state.get()), 0, decoder_ids.size(), 0}};
  run_decoder(x.data(), slices);
  std::vector<float> logits(decoder_ids.size() * static_cast<size_t>(config_.vocab_size));
  head(x.data(), decoder_ids.size(), logits.data());
  return logits;
}

void T5Model::decode(DecoderState* const* states, const int32_t* tokens, size_t n,
                     float* logits) const {
  if (n == 0) return;
  const size_t d = static_cast<size_t>(config_.d_model);
  std::vector<float> x(n * d);
  std::vector<Slice> slices;
  for (size_t i = 0; i < n; ++i) {
    auto* state = dynamic_cast<T5State*>(states[i]);
    MMFUSE_CHECK(state != nullptr, internal, "decode: a state of another model");
    MMFUSE_CHECK(state->filled < max_positions(), bad_input,
                 "the sequence reached " + name_ + "'s " + std::to_string(max_positions()) +
                     " decoder positions");
    embed(tokens[i], &x[i * d]);
    slices.push_back({state, i, 1, state->filled});
  }
  run_decoder(x.data(), slices);
  head(x.data(), n, logits);
}

}  // namespace mmfuse
