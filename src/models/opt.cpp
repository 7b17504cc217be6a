#include "models/opt.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/gemm.h"
#include "mmfuse/error.h"
#include "models/kv_cache.h"
#include "models/lora.h"

namespace mmfuse {

namespace {

// nn.LayerNorm's default; OPTConfig has no eps field.
constexpr float kLayerNormEps = 1e-5f;
// OPTLearnedPositionalEmbedding: position p reads row p + 2 (fairseq kept rows
// 0 and 1 for padding).
constexpr size_t kPositionOffset = 2;

}  // namespace

OptConfig OptConfig::from_json(const nlohmann::json& config, const std::string& where) {
  MMFUSE_CHECK(config.is_object(), bad_input, where + ": must be a JSON object");
  const JsonFields f(config, where);
  OptConfig c;
  const std::string model_type = f.string("model_type", "opt");
  MMFUSE_CHECK(model_type == "opt", unsupported,
               where + ": model_type \"" + model_type + "\" is not an OPT config");
  c.vocab_size = f.positive("vocab_size", c.vocab_size);
  c.hidden_size = f.positive("hidden_size", c.hidden_size);
  c.ffn_dim = f.positive("ffn_dim", c.ffn_dim);
  c.num_hidden_layers = f.positive("num_hidden_layers", c.num_hidden_layers);
  c.num_attention_heads = f.positive("num_attention_heads", c.num_attention_heads);
  c.max_position_embeddings =
      f.positive("max_position_embeddings", c.max_position_embeddings);
  // None means "the hidden size", as OPTConfig.__init__ does.
  c.word_embed_proj_dim = f.positive("word_embed_proj_dim", c.hidden_size);
  c.do_layer_norm_before = f.boolean("do_layer_norm_before", true);
  c.remove_final_layer_norm = f.boolean("_remove_final_layer_norm", false);
  c.enable_bias = f.boolean("enable_bias", true);
  c.layer_norm_elementwise_affine = f.boolean("layer_norm_elementwise_affine", true);
  c.tie_word_embeddings = f.boolean("tie_word_embeddings", true);
  MMFUSE_CHECK(c.hidden_size % c.num_attention_heads == 0, bad_input,
               where + ": hidden_size is not divisible by num_attention_heads");
  const std::string act = f.string("activation_function", "relu");
  try {
    c.activation = parse_activation(act, where + ": activation_function");
  } catch (const Error&) {
    throw_error(ErrorKind::unsupported,
                where + ": activation_function \"" + act +
                    "\" is not supported (relu, gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, "
                    "quick_gelu and tanh are)");
  }
  c.bos_token_id = f.token_id("bos_token_id", c.bos_token_id, c.vocab_size);
  c.pad_token_id = f.token_id("pad_token_id", c.pad_token_id, c.vocab_size);
  c.eos_token_ids = f.token_ids("eos_token_id", c.eos_token_ids, c.vocab_size);
  return c;
}

struct OptModel::Slice {
  KvCacheState* state = nullptr;
  size_t row0 = 0, rows = 0, pos0 = 0;
};

OptModel::OptModel(WeightStore& store, const OptConfig& config, const std::string& prefix,
                   std::shared_ptr<ThreadPool> pool, std::string name)
    : config_(config), pool_(pool_or_own(std::move(pool))), name_(std::move(name)) {
  const int h = config.hidden_size, ffn = config.ffn_dim, word = config.word_embed_proj_dim;
  auto norm_of = [&](const std::string& module) {
    Norm n;
    if (config.layer_norm_elementwise_affine) {
      const float* w = store.f32(module + ".weight", {h});
      const float* b = store.f32(module + ".bias", {h});
      n.weight.assign(w, w + h);
      n.bias.assign(b, b + h);
    } else {
      n.weight.assign(static_cast<size_t>(h), 1.0f);
      n.bias.assign(static_cast<size_t>(h), 0.0f);
    }
    return n;
  };
  // OPTForCausalLM keeps the decoder under "model.decoder."; the facebook/opt-*
  // checkpoints were saved from OPTModel, under "decoder.".
  std::string decoder = prefix + "model.decoder.";
  if (!store.has(decoder + "embed_tokens.weight") &&
      store.has(prefix + "decoder.embed_tokens.weight"))
    decoder = prefix + "decoder.";

  embed_tokens_ = store.typed_linear(decoder + "embed_tokens", word, config.vocab_size, false);
  embed_positions_ =
      store.typed_linear(decoder + "embed_positions", h,
                      config.max_position_embeddings + static_cast<int>(kPositionOffset), false);
  if (word != h) {
    project_in_ = store.typed_linear(decoder + "project_in", word, h, false);
    project_out_ = store.typed_linear(decoder + "project_out", h, word, false);
  }
  for (int i = 0; i < config.num_hidden_layers; ++i) {
    const std::string p = decoder + "layers." + std::to_string(i) + ".";
    Layer l;
    l.attn_norm = norm_of(p + "self_attn_layer_norm");
    l.ffn_norm = norm_of(p + "final_layer_norm");
    const bool bias = config.enable_bias;
    const std::pair<TypedLinear*, std::tuple<std::string, int, int>> parts[] = {
        {&l.q, {"self_attn.q_proj", h, h}}, {&l.k, {"self_attn.k_proj", h, h}},
        {&l.v, {"self_attn.v_proj", h, h}}, {&l.out, {"self_attn.out_proj", h, h}},
        {&l.fc1, {"fc1", h, ffn}},          {&l.fc2, {"fc2", ffn, h}}};
    int m = 0;
    for (const auto& [target, spec] : parts) {
      const auto& [path, in, out] = spec;
      l.module[m++] = p + path;
      *target = store.typed_linear(p + path, in, out, bias);
    }
    layers_.push_back(std::move(l));
  }
  if (config.has_final_layer_norm()) final_norm_ = norm_of(decoder + "final_layer_norm");

  const std::string head = prefix + "lm_head.weight";
  MMFUSE_CHECK(config.tie_word_embeddings || store.has(head), bad_input,
               store.describe_source(head) + ": missing tensor \"" + head +
                   "\" (tie_word_embeddings is false)");
  // A tied head is usually not stored (save_pretrained drops it); when it is,
  // it equals embed_tokens, so the embeddings serve either way.
  lm_head_ = config.tie_word_embeddings || !store.has(head)
                 ? embed_tokens_
                 : store.typed_linear(prefix + "lm_head", word, config.vocab_size, false);
}

size_t OptModel::weight_bytes() const {
  size_t n = embed_tokens_.bytes() +
             typed_row_bytes(embed_positions_.type, static_cast<size_t>(config_.hidden_size));
  if (project_in_.weight != nullptr) n += project_in_.bytes() + project_out_.bytes();
  for (const auto& l : layers_)
    n += l.q.bytes() + l.k.bytes() + l.v.bytes() + l.out.bytes() + l.fc1.bytes() + l.fc2.bytes();
  if (lm_head_.weight != embed_tokens_.weight) n += lm_head_.bytes();
  return n;
}

void OptModel::embed(int32_t token, float* out) const {
  MMFUSE_CHECK(token >= 0 && token < config_.vocab_size, bad_input,
               "token id " + std::to_string(token) + " is outside the vocabulary (0.." +
                   std::to_string(config_.vocab_size - 1) + ")");
  typed_row(embed_tokens_.type, embed_tokens_.weight, static_cast<size_t>(token),
            static_cast<size_t>(config_.word_embed_proj_dim), out);
}

void OptModel::norm_rows(const float* x, size_t rows, const Norm& norm, float* y) const {
  const LayerNormWeights ln{norm.weight.data(), norm.bias.data(), config_.hidden_size,
                            kLayerNormEps};
  layer_norm(*pool_, x, rows, ln, y);
}

void OptModel::add_lora(const float* x, const TypedLinear& lin, const std::string& module,
                        const std::vector<Slice>& slices, float* y) const {
  for (const Slice& s : slices) {
    if (s.state->adapter == nullptr) continue;
    if (const LoraWeights* lora = s.state->adapter->find(module))
      add_lora_update(*lora, x + s.row0 * lin.in, s.rows, lin.in, y + s.row0 * lin.out, lin.out);
  }
}

void OptModel::embed_rows(const float* embedded, const std::vector<Slice>& slices, float* x) const {
  const size_t hidden = static_cast<size_t>(config_.hidden_size);
  size_t rows = 0;
  for (const Slice& s : slices) rows = std::max(rows, s.row0 + s.rows);
  if (project_in_.weight != nullptr)
    typed_linear(*pool_, embedded, rows, project_in_, x);
  else
    std::copy(embedded, embedded + rows * hidden, x);
  // Every position is real (no padding inside a sequence), so HF's
  // cumsum(mask) * mask - 1 is the position itself.
  std::vector<float> position(hidden);
  for (const Slice& s : slices)
    for (size_t j = 0; j < s.rows; ++j) {
      typed_row(embed_positions_.type, embed_positions_.weight, s.pos0 + j + kPositionOffset,
                hidden, position.data());
      float* row = x + (s.row0 + j) * hidden;
      for (size_t i = 0; i < hidden; ++i) row[i] += position[i];
    }
}

void OptModel::forward(float* x, std::vector<Slice>& slices) const {
  const size_t hidden = static_cast<size_t>(config_.hidden_size);
  const size_t heads = static_cast<size_t>(config_.num_attention_heads);
  const size_t hd = static_cast<size_t>(config_.head_dim());
  const size_t ffn = static_cast<size_t>(config_.ffn_dim);
  const bool pre_ln = config_.do_layer_norm_before;
  size_t rows = 0;
  for (const Slice& s : slices) rows = std::max(rows, s.row0 + s.rows);

  std::vector<float> normed(pre_ln ? rows * hidden : 0), q(rows * hidden), k(rows * hidden),
      v(rows * hidden), context(rows * hidden), inner(rows * ffn);
  // HF scales the projected query (bias included) before q k^T; doing the
  // same keeps the rounding when head_dim**-0.5 is not a power of two.
  const float scaling = 1.0f / std::sqrt(static_cast<float>(hd));

  for (size_t li = 0; li < layers_.size(); ++li) {
    const Layer& layer = layers_[li];
    // Pre-LN: attention reads the normed rows; post-LN (opt-350m): the rows
    // themselves, and the norm follows the residual sum.
    const float* attn_in = x;
    if (pre_ln) {
      norm_rows(x, rows, layer.attn_norm, normed.data());
      attn_in = normed.data();
    }
    typed_linears(*pool_, attn_in, rows,
                  {{&layer.q, q.data()}, {&layer.k, k.data()}, {&layer.v, v.data()}});
    add_lora(attn_in, layer.q, layer.module[0], slices, q.data());
    add_lora(attn_in, layer.k, layer.module[1], slices, k.data());
    add_lora(attn_in, layer.v, layer.module[2], slices, v.data());
    for (size_t i = 0; i < rows * hidden; ++i) q[i] *= scaling;
    for (Slice& s : slices) {
      auto& kc = s.state->k[li];
      auto& vc = s.state->v[li];
      kc.insert(kc.end(), k.begin() + static_cast<long>(s.row0 * hidden),
                k.begin() + static_cast<long>((s.row0 + s.rows) * hidden));
      vc.insert(vc.end(), v.begin() + static_cast<long>(s.row0 * hidden),
                v.begin() + static_cast<long>((s.row0 + s.rows) * hidden));
    }
    // Attention: each query row of a sequence sees that sequence's cached
    // positions up to its own (causal), one task per (sequence, head).
    pool_->parallel_tasks(slices.size() * heads, [&](size_t task, int) {
      const Slice& s = slices[task / heads];
      const size_t h = task % heads;
      const size_t keys = s.pos0 + s.rows;
      const float* kc = s.state->k[li].data();
      const float* vc = s.state->v[li].data();
      std::vector<float> scores(s.rows * keys);
      sgemm(true, static_cast<int>(s.rows), static_cast<int>(keys), static_cast<int>(hd), 1.0f,
            &q[s.row0 * hidden + h * hd], static_cast<int>(hidden), kc + h * hd,
            static_cast<int>(hidden), 0.0f, scores.data(), static_cast<int>(keys));
      for (size_t j = 0; j < s.rows; ++j) {
        float* row = scores.data() + j * keys;
        const size_t visible = s.pos0 + j + 1;
        kernels::softmax_row(row, visible);
        std::fill(row + visible, row + keys, 0.0f);
      }
      sgemm(false, static_cast<int>(s.rows), static_cast<int>(hd), static_cast<int>(keys), 1.0f,
            scores.data(), static_cast<int>(keys), vc + h * hd, static_cast<int>(hidden), 0.0f,
            &context[s.row0 * hidden + h * hd], static_cast<int>(hidden));
    });
    // The residual sum happens in the product (x += out_proj(context)).
    typed_linear(*pool_, context.data(), rows, layer.out, x, true);
    add_lora(context.data(), layer.out, layer.module[3], slices, x);
    if (!pre_ln) norm_rows(x, rows, layer.attn_norm, x);

    const float* ffn_in = x;
    if (pre_ln) {
      norm_rows(x, rows, layer.ffn_norm, normed.data());
      ffn_in = normed.data();
    }
    typed_linear(*pool_, ffn_in, rows, layer.fc1, inner.data());
    add_lora(ffn_in, layer.fc1, layer.module[4], slices, inner.data());
    activate(*pool_, inner.data(), rows * ffn, config_.activation);
    typed_linear(*pool_, inner.data(), rows, layer.fc2, x, true);
    add_lora(inner.data(), layer.fc2, layer.module[5], slices, x);
    if (!pre_ln) norm_rows(x, rows, layer.ffn_norm, x);
  }
  for (Slice& s : slices) s.state->filled += s.rows;
}

void OptModel::head(float* x, size_t rows, float* logits) const {
  if (config_.has_final_layer_norm()) norm_rows(x, rows, final_norm_, x);
  if (project_out_.weight != nullptr) {
    std::vector<float> projected(rows * static_cast<size_t>(config_.word_embed_proj_dim));
    typed_linear(*pool_, x, rows, project_out_, projected.data());
    typed_linear(*pool_, projected.data(), rows, lm_head_, logits);
  } else {
    typed_linear(*pool_, x, rows, lm_head_, logits);
  }
}

std::vector<float> OptModel::embed_prompt(const PromptInput& prompt) const {
  const size_t width = static_cast<size_t>(config_.word_embed_proj_dim);
  const size_t length = prompt.length();
  MMFUSE_CHECK(length > 0, bad_input, "the prompt is empty");
  MMFUSE_CHECK(length <= max_positions(), bad_input,
               "the prompt has " + std::to_string(length) + " positions; the model takes at most " +
                   std::to_string(max_positions()) + " (max_position_embeddings)");
  return embed_prompt_segments(prompt, width,
                               [this](int32_t id, float* row) { embed(id, row); });
}

std::unique_ptr<DecoderState> OptModel::prefill(const PromptInput& prompt, float* logits,
                                                const LoraAdapter* adapter) const {
  const size_t hidden = static_cast<size_t>(config_.hidden_size);
  const std::vector<float> embedded = embed_prompt(prompt);
  const size_t length = prompt.length();
  auto state = std::make_unique<KvCacheState>(layers_.size());
  state->adapter = adapter;
  for (size_t li = 0; li < layers_.size(); ++li) {
    state->k[li].reserve((length + 64) * hidden);
    state->v[li].reserve((length + 64) * hidden);
  }
  std::vector<Slice> slices{{state.get(), 0, length, 0}};
  std::vector<float> x(length * hidden);
  embed_rows(embedded.data(), slices, x.data());
  forward(x.data(), slices);
  head(&x[(length - 1) * hidden], 1, logits);
  return state;
}

std::vector<float> OptModel::prompt_logits(const PromptInput& prompt,
                                           const LoraAdapter* adapter) const {
  const size_t hidden = static_cast<size_t>(config_.hidden_size);
  const std::vector<float> embedded = embed_prompt(prompt);
  const size_t length = prompt.length();
  KvCacheState state(layers_.size());
  state.adapter = adapter;
  std::vector<Slice> slices{{&state, 0, length, 0}};
  std::vector<float> x(length * hidden);
  embed_rows(embedded.data(), slices, x.data());
  forward(x.data(), slices);
  std::vector<float> logits(length * static_cast<size_t>(config_.vocab_size));
  head(x.data(), length, logits.data());
  return logits;
}

void OptModel::decode(DecoderState* const* states, const int32_t* tokens, size_t n,
                      float* logits) const {
  if (n == 0) return;
  const size_t hidden = static_cast<size_t>(config_.hidden_size);
  const size_t width = static_cast<size_t>(config_.word_embed_proj_dim);
  std::vector<float> embedded(n * width);
  std::vector<Slice> slices;
  for (size_t i = 0; i < n; ++i) {
    auto* state = dynamic_cast<KvCacheState*>(states[i]);
    MMFUSE_CHECK(state != nullptr, internal, "decode: a state of another model");
    MMFUSE_CHECK(state->filled < max_positions(), bad_input,
                 "the sequence reached the model's " + std::to_string(max_positions()) +
                     " positions (max_position_embeddings)");
    embed(tokens[i], &embedded[i * width]);
    slices.push_back({state, i, 1, state->filled});
  }
  std::vector<float> x(n * hidden);
  embed_rows(embedded.data(), slices, x.data());
  forward(x.data(), slices);
  head(x.data(), n, logits);
}

}  // namespace mmfuse
