#include "models/llama.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/gemm.h"
#include "mmfuse/error.h"
#include "models/kv_cache.h"
#include "models/lora.h"

namespace mmfuse {

namespace {

RopeScaling parse_rope_scaling(const nlohmann::json& config, const std::string& where,
                               int max_positions) {
  RopeScaling r;
  if (!config.contains("rope_scaling") || config["rope_scaling"].is_null()) return r;
  const nlohmann::json& j = config["rope_scaling"];
  MMFUSE_CHECK(j.is_object(), bad_input, where + ": rope_scaling must be an object or null");
  const JsonFields f(j, where + " rope_scaling");
  const std::string kind = f.string("rope_type", f.string("type", "default"));
  if (kind == "default") return r;
  r.factor = f.number("factor", 1.0);
  MMFUSE_CHECK(r.factor >= 1.0, bad_input, f.where() + ": factor must be >= 1");
  if (kind == "linear") {
    r.kind = RopeScaling::Kind::linear;
  } else if (kind == "dynamic") {
    r.kind = RopeScaling::Kind::dynamic;
    r.original_max_position_embeddings = max_positions;
  } else if (kind == "llama3") {
    r.kind = RopeScaling::Kind::llama3;
    r.low_freq_factor = f.number("low_freq_factor", 1.0);
    r.high_freq_factor = f.number("high_freq_factor", 4.0);
    r.original_max_position_embeddings =
        static_cast<int>(f.integer("original_max_position_embeddings", 8192));
    MMFUSE_CHECK(r.high_freq_factor > r.low_freq_factor && r.original_max_position_embeddings > 0,
                 bad_input, f.where() + ": needs high_freq_factor > low_freq_factor");
  } else {
    throw_error(ErrorKind::unsupported,
                f.where() + ": rope type \"" + kind +
                    "\" is not supported (default, linear, dynamic and llama3 are)");
  }
  return r;
}

// transformers' default RoPE frequencies: 1 / base^(2i/dim), in float32.
std::vector<float> rope_frequencies(double base, int dim) {
  std::vector<float> inv(static_cast<size_t>(dim / 2));
  for (size_t i = 0; i < inv.size(); ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
    inv[i] = 1.0f / std::pow(static_cast<float>(base), exponent);
  }
  return inv;
}

void rms_norm_row(const float* x, size_t dim, const float* weight, float eps, float* y) {
  double sum = 0.0;
  for (size_t i = 0; i < dim; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float variance = static_cast<float>(sum / static_cast<double>(dim));
  const float scale = 1.0f / std::sqrt(variance + eps);
  for (size_t i = 0; i < dim; ++i) y[i] = weight[i] * (x[i] * scale);
}

}  // namespace

LlamaConfig LlamaConfig::from_json(const nlohmann::json& config, const std::string& where) {
  MMFUSE_CHECK(config.is_object(), bad_input, where + ": must be a JSON object");
  const JsonFields f(config, where);
  LlamaConfig c;
  c.vocab_size = f.positive("vocab_size", c.vocab_size);
  c.hidden_size = f.positive("hidden_size", c.hidden_size);
  c.intermediate_size = f.positive("intermediate_size", c.intermediate_size);
  c.num_hidden_layers = f.positive("num_hidden_layers", c.num_hidden_layers);
  c.num_attention_heads = f.positive("num_attention_heads", c.num_attention_heads);
  c.num_key_value_heads =
      config.contains("num_key_value_heads") && !config["num_key_value_heads"].is_null()
          ? f.positive("num_key_value_heads", c.num_attention_heads)
          : c.num_attention_heads;
  c.max_position_embeddings = f.positive("max_position_embeddings", c.max_position_embeddings);
  c.rms_norm_eps = static_cast<float>(f.number("rms_norm_eps", c.rms_norm_eps));
  c.rope_theta = f.number("rope_theta", c.rope_theta);
  c.attention_bias = f.boolean("attention_bias", false);
  c.mlp_bias = f.boolean("mlp_bias", false);
  c.tie_word_embeddings = f.boolean("tie_word_embeddings", false);
  MMFUSE_CHECK(c.hidden_size % c.num_attention_heads == 0, bad_input,
               where + ": hidden_size is not divisible by num_attention_heads");
  c.head_dim = config.contains("head_dim") && !config["head_dim"].is_null()
                   ? f.positive("head_dim", c.hidden_size / c.num_attention_heads)
                   : c.hidden_size / c.num_attention_heads;
  MMFUSE_CHECK(c.head_dim % 2 == 0, bad_input, where + ": head_dim must be even (rotary halves)");
  MMFUSE_CHECK(c.num_attention_heads % c.num_key_value_heads == 0, bad_input,
               where + ": num_attention_heads must be a multiple of num_key_value_heads");
  const std::string act = f.string("hidden_act", "silu");
  MMFUSE_CHECK(act == "silu", unsupported,
               where + ": hidden_act \"" + act + "\" is not supported (Llama uses silu)");
  MMFUSE_CHECK(c.rope_theta > 0, bad_input, where + ": rope_theta must be positive");
  c.rope_scaling = parse_rope_scaling(config, where, c.max_position_embeddings);
  return c;
}

struct LlamaModel::Slice {
  KvCacheState* state = nullptr;
  size_t row0 = 0, rows = 0, pos0 = 0;
};

LlamaModel::LlamaModel(WeightStore& store, const LlamaConfig& config, const std::string& prefix,
                       std::shared_ptr<ThreadPool> pool, std::string name)
    : config_(config), pool_(std::move(pool)), name_(std::move(name)) {
  const int h = config.hidden_size, inter = config.intermediate_size;
  const int q_dim = config.num_attention_heads * config.head_dim;
  const int kv_dim = config.num_key_value_heads * config.head_dim;
  auto norm_of = [&](const std::string& tensor) {
    const float* w = store.f32(tensor, {h});
    return std::vector<float>(w, w + h);
  };
  const std::string model = prefix + "model.";
  embed_tokens_ = store.typed_linear(model + "embed_tokens", h, config.vocab_size, false);
  for (int i = 0; i < config.num_hidden_layers; ++i) {
    const std::string p = model + "layers." + std::to_string(i) + ".";
    Layer l;
    l.input_norm = norm_of(p + "input_layernorm.weight");
    l.post_attention_norm = norm_of(p + "post_attention_layernorm.weight");
    const std::pair<TypedLinear*, std::tuple<std::string, int, int, bool>> parts[] = {
        {&l.q, {"self_attn.q_proj", h, q_dim, config.attention_bias}},
        {&l.k, {"self_attn.k_proj", h, kv_dim, config.attention_bias}},
        {&l.v, {"self_attn.v_proj", h, kv_dim, config.attention_bias}},
        {&l.o, {"self_attn.o_proj", q_dim, h, config.attention_bias}},
        {&l.gate, {"mlp.gate_proj", h, inter, config.mlp_bias}},
        {&l.up, {"mlp.up_proj", h, inter, config.mlp_bias}},
        {&l.down, {"mlp.down_proj", inter, h, config.mlp_bias}}};
    int m = 0;
    for (const auto& [target, spec] : parts) {
      const auto& [path, in, out, bias] = spec;
      l.module[m++] = p + path;
      *target = store.typed_linear(p + path, in, out, bias);
    }
    layers_.push_back(std::move(l));
  }
  final_norm_ = norm_of(model + "norm.weight");
  lm_head_ = config.tie_word_embeddings || !store.has(prefix + "lm_head.weight")
                 ? embed_tokens_
                 : store.typed_linear(prefix + "lm_head", h, config.vocab_size, false);
  MMFUSE_CHECK(config.tie_word_embeddings || store.has(prefix + "lm_head.weight"), bad_input,
               store.describe_source(prefix + "lm_head.weight") + ": missing tensor \"" + prefix +
                   "lm_head.weight\" (tie_word_embeddings is false)");

  inv_freq_ = rope_frequencies(config.rope_theta, config.head_dim);
  const RopeScaling& rs = config.rope_scaling;
  if (rs.kind == RopeScaling::Kind::linear) {
    for (float& f : inv_freq_) f /= static_cast<float>(rs.factor);
  } else if (rs.kind == RopeScaling::Kind::llama3) {
    const double old_len = rs.original_max_position_embeddings;
    const double low_wavelen = old_len / rs.low_freq_factor;
    const double high_wavelen = old_len / rs.high_freq_factor;
    for (float& f : inv_freq_) {
      const float wavelen = 2.0f * static_cast<float>(M_PI) / f;
      const float scaled = wavelen > low_wavelen ? f / static_cast<float>(rs.factor) : f;
      if (wavelen < high_wavelen || wavelen > low_wavelen) {
        f = scaled;
      } else {
        const float smooth = static_cast<float>((old_len / wavelen - rs.low_freq_factor) /
                                                (rs.high_freq_factor - rs.low_freq_factor));
        f = (1.0f - smooth) * scaled / static_cast<float>(rs.factor) + smooth * scaled;
      }
    }
  }
}

size_t LlamaModel::weight_bytes() const {
  size_t n = embed_tokens_.bytes();
  for (const auto& l : layers_)
    n += l.q.bytes() + l.k.bytes() + l.v.bytes() + l.o.bytes() + l.gate.bytes() + l.up.bytes() +
         l.down.bytes();
  if (lm_head_.weight != embed_tokens_.weight) n += lm_head_.bytes();
  return n;
}

void LlamaModel::embed(int32_t token, float* out) const {
  MMFUSE_CHECK(token >= 0 && token < config_.vocab_size, bad_input,
               "token id " + std::to_string(token) + " is outside the vocabulary (0.." +
                   std::to_string(config_.vocab_size - 1) + ")");
  typed_row(embed_tokens_.type, embed_tokens_.weight, static_cast<size_t>(token),
            static_cast<size_t>(config_.hidden_size), out);
}

void LlamaModel::project(const float* x, size_t rows, const TypedLinear& lin,
                         const std::string& module, const std::vector<Slice>& slices,
                         float* y) const {
  typed_linear(*pool_, x, rows, lin, y);
  add_lora(x, lin, module, slices, y);
}

void LlamaModel::add_lora(const float* x, const TypedLinear& lin, const std::string& module,
                          const std::vector<Slice>& slices, float* y) const {
  for (const Slice& s : slices) {
    if (s.state->adapter == nullptr) continue;
    if (const LoraWeights* lora = s.state->adapter->find(module))
      add_lora_update(*lora, x + s.row0 * lin.in, s.rows, lin.in, y + s.row0 * lin.out, lin.out);
  }
}

void LlamaModel::forward(float* x, std::vector<Slice>& slices) const {
  const size_t hidden = static_cast<size_t>(config_.hidden_size);
  const size_t heads = static_cast<size_t>(config_.num_attention_heads);
  const size_t kv_heads = static_cast<size_t>(config_.num_key_value_heads);
  const size_t hd = static_cast<size_t>(config_.head_dim);
  const size_t q_dim = heads * hd, kv_dim = kv_heads * hd;
  const size_t inter = static_cast<size_t>(config_.intermediate_size);
  size_t rows = 0;
  for (const Slice& s : slices) rows = std::max(rows, s.row0 + s.rows);

  // Rotary cos/sin per row (positions differ per sequence). Dynamic scaling
  // recomputes the frequencies from the longest position, as HF does per call.
  const size_t half = hd / 2;
  std::vector<float> cos_table(rows * half), sin_table(rows * half);
  for (const Slice& s : slices) {
    std::vector<float> inv = inv_freq_;
    const size_t seq_len = s.pos0 + s.rows;
    const RopeScaling& rs = config_.rope_scaling;
    if (rs.kind == RopeScaling::Kind::dynamic &&
        seq_len > static_cast<size_t>(rs.original_max_position_embeddings)) {
      const double dim = static_cast<double>(hd);
      const double base =
          config_.rope_theta *
          std::pow(rs.factor * static_cast<double>(seq_len) / rs.original_max_position_embeddings -
                       (rs.factor - 1.0),
                   dim / (dim - 2.0));
      inv = rope_frequencies(base, config_.head_dim);
    }
    for (size_t j = 0; j < s.rows; ++j)
      for (size_t i = 0; i < half; ++i) {
        const float angle = static_cast<float>(s.pos0 + j) * inv[i];
        cos_table[(s.row0 + j) * half + i] = std::cos(angle);
        sin_table[(s.row0 + j) * half + i] = std::sin(angle);
      }
  }
  auto rotate = [&](float* v, size_t row) {
    const float* c = &cos_table[row * half];
    const float* sn = &sin_table[row * half];
    for (size_t i = 0; i < half; ++i) {
      const float a = v[i], b = v[i + half];
      v[i] = a * c[i] - b * sn[i];
      v[i + half] = b * c[i] + a * sn[i];
    }
  };

  std::vector<float> normed(rows * hidden), q(rows * q_dim), k(rows * kv_dim), v(rows * kv_dim);
  std::vector<float> context(rows * q_dim), gate(rows * inter), up(rows * inter),
      out(rows * hidden);
  const float inv_sqrt_hd = 1.0f / std::sqrt(static_cast<float>(hd));

  for (size_t li = 0; li < layers_.size(); ++li) {
    const Layer& layer = layers_[li];
    for (size_t r = 0; r < rows; ++r)
      rms_norm_row(x + r * hidden, hidden, layer.input_norm.data(), config_.rms_norm_eps,
                   normed.data() + r * hidden);
    typed_linears(*pool_, normed.data(), rows,
                  {{&layer.q, q.data()}, {&layer.k, k.data()}, {&layer.v, v.data()}});
    add_lora(normed.data(), layer.q, layer.module[0], slices, q.data());
    add_lora(normed.data(), layer.k, layer.module[1], slices, k.data());
    add_lora(normed.data(), layer.v, layer.module[2], slices, v.data());
    for (size_t r = 0; r < rows; ++r) {
      for (size_t h = 0; h < heads; ++h) rotate(&q[r * q_dim + h * hd], r);
      for (size_t h = 0; h < kv_heads; ++h) rotate(&k[r * kv_dim + h * hd], r);
    }
    for (Slice& s : slices) {
      auto& kc = s.state->k[li];
      auto& vc = s.state->v[li];
      kc.insert(kc.end(), k.begin() + static_cast<long>(s.row0 * kv_dim),
                k.begin() + static_cast<long>((s.row0 + s.rows) * kv_dim));
      vc.insert(vc.end(), v.begin() + static_cast<long>(s.row0 * kv_dim),
                v.begin() + static_cast<long>((s.row0 + s.rows) * kv_dim));
    }
    // Attention: each query row of a sequence sees that sequence's cached
    // positions up to its own (causal), one task per (sequence, head).
    const size_t group = heads / kv_heads;
    pool_->parallel_tasks(slices.size() * heads, [&](size_t task, int) {
      const Slice& s = slices[task / heads];
      const size_t h = task % heads, kvh = h / group;
      const size_t keys = s.pos0 + s.rows;
      const float* kc = s.state->k[li].data();
      const float* vc = s.state->v[li].data();
      std::vector<float> scores(s.rows * keys);
      sgemm(true, static_cast<int>(s.rows), static_cast<int>(keys), static_cast<int>(hd),
            inv_sqrt_hd, &q[s.row0 * q_dim + h * hd], static_cast<int>(q_dim), kc + kvh * hd,
            static_cast<int>(kv_dim), 0.0f, scores.data(), static_cast<int>(keys));
      for (size_t j = 0; j < s.rows; ++j) {
        float* row = scores.data() + j * keys;
        const size_t visible = s.pos0 + j + 1;
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
      sgemm(false, static_cast<int>(s.rows), static_cast<int>(hd), static_cast<int>(keys), 1.0f,
            scores.data(), static_cast<int>(keys), vc + kvh * hd, static_cast<int>(kv_dim), 0.0f,
            &context[s.row0 * q_dim + h * hd], static_cast<int>(q_dim));
    });
    project(context.data(), rows, layer.o, layer.module[3], slices, out.data());
    for (size_t i = 0; i < rows * hidden; ++i) x[i] += out[i];

    for (size_t r = 0; r < rows; ++r)
      rms_norm_row(x + r * hidden, hidden, layer.post_attention_norm.data(), config_.rms_norm_eps,
                   normed.data() + r * hidden);
    typed_linears(*pool_, normed.data(), rows, {{&layer.gate, gate.data()}, {&layer.up, up.data()}});
    add_lora(normed.data(), layer.gate, layer.module[4], slices, gate.data());
    add_lora(normed.data(), layer.up, layer.module[5], slices, up.data());
    for (size_t i = 0; i < rows * inter; ++i) {
      const float g = gate[i];
      gate[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
    project(gate.data(), rows, layer.down, layer.module[6], slices, out.data());
    for (size_t i = 0; i < rows * hidden; ++i) x[i] += out[i];
  }
  for (Slice& s : slices) s.state->filled += s.rows;
}

std::vector<float> LlamaModel::embed_prompt(const PromptInput& prompt) const {
  const size_t hidden = static_cast<size_t>(config_.hidden_size);
  const size_t length = prompt.length();
  MMFUSE_CHECK(length > 0, bad_input, "the prompt is empty");
  MMFUSE_CHECK(length < max_positions(), bad_input,
               "the prompt has " + std::to_string(length) + " positions; the model takes at most " +
                   std::to_string(max_positions()) + " (max_position_embeddings)");
  return embed_prompt_segments(prompt, hidden,
                               [this](int32_t id, float* row) { embed(id, row); });
}

std::unique_ptr<DecoderState> LlamaModel::prefill(const PromptInput& prompt, float* logits,
                                                  const LoraAdapter* adapter) const {
  const size_t hidden = static_cast<size_t>(config_.hidden_size);
  std::vector<float> x = embed_prompt(prompt);
  const size_t length = x.size() / hidden;
  auto state = std::make_unique<KvCacheState>(layers_.size());
  state->adapter = adapter;
  const size_t kv_row = static_cast<size_t>(config_.num_key_value_heads) * config_.head_dim;
  for (size_t li = 0; li < layers_.size(); ++li) {
    state->k[li].reserve((length + 64) * kv_row);
    state->v[li].reserve((length + 64) * kv_row);
  }
  std::vector<Slice> slices{{state.get(), 0, length, 0}};
  forward(x.data(), slices);
  std::vector<float> last(hidden);
  rms_norm_row(&x[(length - 1) * hidden], hidden, final_norm_.data(), config_.rms_norm_eps,
               last.data());
  typed_linear(*pool_, last.data(), 1, lm_head_, logits);
  return state;
}

std::vector<float> LlamaModel::prompt_logits(const PromptInput& prompt,
                                             const LoraAdapter* adapter) const {
  const size_t hidden = static_cast<size_t>(config_.hidden_size);
  std::vector<float> x = embed_prompt(prompt);
  const size_t length = x.size() / hidden;
  KvCacheState state(layers_.size());
  state.adapter = adapter;
  std::vector<Slice> slices{{&state, 0, length, 0}};
  forward(x.data(), slices);
  for (size_t r = 0; r < length; ++r)
    rms_norm_row(&x[r * hidden], hidden, final_norm_.data(), config_.rms_norm_eps, &x[r * hidden]);
  std::vector<float> logits(length * static_cast<size_t>(config_.vocab_size));
  typed_linear(*pool_, x.data(), length, lm_head_, logits.data());
  return logits;
}

void LlamaModel::decode(DecoderState* const* states, const int32_t* tokens, size_t n,
                        float* logits) const {
  if (n == 0) return;
  const size_t hidden = static_cast<size_t>(config_.hidden_size);
  std::vector<float> x(n * hidden);
  std::vector<Slice> slices;
  for (size_t i = 0; i < n; ++i) {
    auto* state = dynamic_cast<KvCacheState*>(states[i]);
    MMFUSE_CHECK(state != nullptr, internal, "decode: a state of another model");
    MMFUSE_CHECK(state->filled < max_positions(), bad_input,
                 "the sequence reached the model's " + std::to_string(max_positions()) +
                     " positions (max_position_embeddings)");
    embed(tokens[i], &x[i * hidden]);
    slices.push_back({state, i, 1, state->filled});
  }
  forward(x.data(), slices);
  for (size_t i = 0; i < n; ++i)
    rms_norm_row(&x[i * hidden], hidden, final_norm_.data(), config_.rms_norm_eps, &x[i * hidden]);
  typed_linear(*pool_, x.data(), n, lm_head_, logits);
}

}  // namespace mmfuse
