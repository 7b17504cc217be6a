// BERT encoder (BertModel / Chinese-CLIP text tower) built from the shared
// post-LN layer, and the text-only BertModel folder loader.
#include "models/bert.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "mmfuse/error.h"

namespace mmfuse {

namespace fs = std::filesystem;

namespace {

int positive(const JsonFields& f, const std::string& key, int fallback) {
  const int64_t v = f.integer(key, fallback);
  MMFUSE_CHECK(
      v > 0 && v < (1 << 24), bad_input,
      f.where() + ": field \"" + key + "\" must be a positive integer, got " + std::to_string(v));
  return static_cast<int>(v);
}

// LayerNorm weights under their current names (weight/bias) or the TF-era ones
// (gamma/beta) that old checkpoints keep; from_pretrained renames the latter.
LayerNormWeights load_bert_layer_norm(WeightStore& store, const std::string& prefix, int dim,
                                      float eps) {
  if (store.has(prefix + ".weight") || !store.has(prefix + ".gamma"))
    return load_layer_norm(store, prefix, dim, eps);
  LayerNormWeights ln;
  ln.dim = dim;
  ln.eps = eps;
  ln.weight = store.f32(prefix + ".gamma", {dim});
  ln.bias = store.f32(prefix + ".beta", {dim});
  return ln;
}

}  // namespace

BertConfig BertConfig::from_json(const nlohmann::json& config, const std::string& where) {
  MMFUSE_CHECK(config.is_object(), bad_input, where + ": config must be a JSON object");
  JsonFields f(config, where);
  BertConfig c;
  c.vocab_size = positive(f, "vocab_size", c.vocab_size);
  c.hidden_size = positive(f, "hidden_size", c.hidden_size);
  c.num_hidden_layers = positive(f, "num_hidden_layers", c.num_hidden_layers);
  c.num_attention_heads = positive(f, "num_attention_heads", c.num_attention_heads);
  c.intermediate_size = positive(f, "intermediate_size", c.intermediate_size);
  c.hidden_act = parse_activation(f.string("hidden_act", "gelu"), where + " hidden_act");
  c.max_position_embeddings = positive(f, "max_position_embeddings", c.max_position_embeddings);
  c.type_vocab_size = positive(f, "type_vocab_size", c.type_vocab_size);
  c.layer_norm_eps = static_cast<float>(f.number("layer_norm_eps", c.layer_norm_eps));
  MMFUSE_CHECK(c.layer_norm_eps > 0.0f, bad_input, where + ": layer_norm_eps must be positive");
  MMFUSE_CHECK(c.hidden_size % c.num_attention_heads == 0, bad_input,
               where + ": hidden_size " + std::to_string(c.hidden_size) +
                   " is not divisible by num_attention_heads " +
                   std::to_string(c.num_attention_heads));
  const std::string pos = f.string("position_embedding_type", "absolute");
  MMFUSE_CHECK(
      pos == "absolute", unsupported,
      where + ": position_embedding_type \"" + pos + "\" is not supported (only \"absolute\")");
  return c;
}

TextPooling parse_text_pooling(const std::string& name) {
  if (name == "cls") return TextPooling::cls;
  if (name == "mean") return TextPooling::mean;
  if (name == "pooler") return TextPooling::pooler;
  throw_error(ErrorKind::bad_input, "unknown pooling \"" + name + "\" (use cls, mean or pooler)");
}

const char* to_string(TextPooling pooling) {
  switch (pooling) {
    case TextPooling::cls: return "cls";
    case TextPooling::mean: return "mean";
    case TextPooling::pooler: return "pooler";
  }
  return "?";
}

BertEncoder::BertEncoder(WeightStore& store, const BertConfig& config, const std::string& prefix,
                         bool with_pooler)
    : config_(config) {
  const int h = config.hidden_size, eps_ffn = config.intermediate_size;
  const std::string e = prefix + "embeddings.";
  word_embeddings_ = store.f32(e + "word_embeddings.weight", {config.vocab_size, h});
  position_embeddings_ =
      store.f32(e + "position_embeddings.weight", {config.max_position_embeddings, h});
  token_type_embeddings_ =
      store.f32(e + "token_type_embeddings.weight", {config.type_vocab_size, h});
  embeddings_layer_norm_ = load_bert_layer_norm(store, e + "LayerNorm", h, config.layer_norm_eps);
  for (int i = 0; i < config.num_hidden_layers; ++i) {
    const std::string l = prefix + "encoder.layer." + std::to_string(i) + ".";
    EncoderLayer layer;
    layer.heads = config.num_attention_heads;
    layer.act = config.hidden_act;
    layer.q = load_linear(store, l + "attention.self.query", h, h);
    layer.k = load_linear(store, l + "attention.self.key", h, h);
    layer.v = load_linear(store, l + "attention.self.value", h, h);
    layer.o = load_linear(store, l + "attention.output.dense", h, h);
    layer.ln_attn =
        load_bert_layer_norm(store, l + "attention.output.LayerNorm", h, config.layer_norm_eps);
    layer.fc1 = load_linear(store, l + "intermediate.dense", h, eps_ffn);
    layer.fc2 = load_linear(store, l + "output.dense", eps_ffn, h);
    layer.ln_mlp = load_bert_layer_norm(store, l + "output.LayerNorm", h, config.layer_norm_eps);
    layers_.push_back(std::move(layer));
  }
  if (with_pooler) {
    pooler_ = load_linear_exact(store, prefix + "pooler.dense", h, h);
    has_pooler_ = true;
  }
}

std::vector<float> BertEncoder::embed(ThreadPool& pool, const TokenBatch& tokens,
                                      PackedSequences& seqs, std::vector<int64_t>& key_mask) const {
  const size_t batch = tokens.input_ids.size();
  const size_t hidden = static_cast<size_t>(config_.hidden_size);
  MMFUSE_CHECK(tokens.attention_mask.size() == batch, bad_input,
               "attention_mask must have one row per input");
  MMFUSE_CHECK(tokens.token_type_ids.empty() || tokens.token_type_ids.size() == batch, bad_input,
               "token_type_ids must be empty or have one row per input");
  seqs.offsets.assign(1, 0);
  for (size_t b = 0; b < batch; ++b) {
    const auto& ids = tokens.input_ids[b];
    MMFUSE_CHECK(!ids.empty(), bad_input, "input " + std::to_string(b) + " has no tokens");
    MMFUSE_CHECK(ids.size() <= static_cast<size_t>(config_.max_position_embeddings), bad_input,
                 "input " + std::to_string(b) + " has " + std::to_string(ids.size()) +
                     " tokens, more than max_position_embeddings " +
                     std::to_string(config_.max_position_embeddings));
    MMFUSE_CHECK(tokens.attention_mask[b].size() == ids.size(), bad_input,
                 "attention_mask row " + std::to_string(b) + " differs in length from input_ids");
    MMFUSE_CHECK(tokens.token_type_ids.empty() || tokens.token_type_ids[b].size() == ids.size(),
                 bad_input,
                 "token_type_ids row " + std::to_string(b) + " differs in length from input_ids");
    seqs.offsets.push_back(seqs.offsets.back() + ids.size());
  }
  const size_t rows = seqs.rows();
  std::vector<float> x(rows * hidden);
  key_mask.assign(rows, 0);
  for (size_t b = 0; b < batch; ++b) {
    const auto& ids = tokens.input_ids[b];
    for (size_t t = 0; t < ids.size(); ++t) {
      const int64_t id = ids[t];
      const int64_t type = tokens.token_type_ids.empty() ? 0 : tokens.token_type_ids[b][t];
      MMFUSE_CHECK(id >= 0 && id < config_.vocab_size, bad_input,
                   "token id " + std::to_string(id) + " outside the vocabulary of " +
                       std::to_string(config_.vocab_size));
      MMFUSE_CHECK(type >= 0 && type < config_.type_vocab_size, bad_input,
                   "token_type_id " + std::to_string(type) + " outside type_vocab_size " +
                       std::to_string(config_.type_vocab_size));
      float* row = x.data() + (seqs.offsets[b] + t) * hidden;
      const float* w = word_embeddings_ + static_cast<size_t>(id) * hidden;
      const float* ty = token_type_embeddings_ + static_cast<size_t>(type) * hidden;
      const float* pos = position_embeddings_ + t * hidden;
      // HF order: (inputs_embeds + token_type_embeddings) + position_embeddings.
      for (size_t i = 0; i < hidden; ++i) row[i] = (w[i] + ty[i]) + pos[i];
      key_mask[seqs.offsets[b] + t] = tokens.attention_mask[b][t];
    }
  }
  layer_norm(pool, x.data(), rows, embeddings_layer_norm_, x.data());
  return x;
}

AttentionOptions BertEncoder::attention_options(const std::vector<int64_t>& key_mask) const {
  AttentionOptions attn;
  attn.heads = config_.num_attention_heads;
  attn.head_dim = config_.hidden_size / config_.num_attention_heads;
  attn.key_mask = key_mask.data();
  return attn;
}

std::vector<float> BertEncoder::forward(ThreadPool& pool, const TokenBatch& tokens,
                                        TowerTrace* trace) const {
  PackedSequences seqs;
  std::vector<int64_t> key_mask;
  std::vector<float> x = embed(pool, tokens, seqs, key_mask);
  const size_t hidden = static_cast<size_t>(config_.hidden_size);
  const AttentionOptions attn = attention_options(key_mask);
  auto keep_layer = [&] {
    if (trace != nullptr && trace->keep_hidden_states && seqs.count() > 0)
      trace->hidden_states.emplace_back(x.begin(),
                                        x.begin() + static_cast<long>(seqs.length(0) * hidden));
  };
  keep_layer();
  EncoderWorkspace ws;
  for (const auto& layer : layers_) {
    post_ln_encoder_layer(pool, x.data(), seqs, layer, attn, ws);
    keep_layer();
  }
  if (trace != nullptr && trace->keep_last_hidden_state) trace->last_hidden_state = x;
  return x;
}

std::vector<float> BertEncoder::apply_pooler(ThreadPool& pool, const float* cls,
                                             size_t batch) const {
  MMFUSE_CHECK(has_pooler_, bad_input,
               "this checkpoint has no pooler (pooler.dense); use cls or mean pooling");
  std::vector<float> out(batch * static_cast<size_t>(config_.hidden_size));
  linear(pool, cls, batch, pooler_, out.data());
  activate(pool, out.data(), out.size(), Activation::tanh);
  return out;
}

std::vector<float> BertEncoder::pooled(ThreadPool& pool, const TokenBatch& tokens,
                                       TextPooling pooling) const {
  const size_t batch = tokens.input_ids.size();
  const size_t hidden = static_cast<size_t>(config_.hidden_size);
  if (batch == 0) return {};
  if (pooling == TextPooling::pooler)
    MMFUSE_CHECK(has_pooler_, bad_input,
                 "this checkpoint has no pooler (pooler.dense); use cls or mean pooling");
  std::vector<float> out(batch * hidden);
  if (pooling == TextPooling::mean) {
    PackedSequences seqs;
    for (size_t b = 0, at = 0; b <= batch; ++b) {
      seqs.offsets.push_back(at);
      if (b < batch) at += tokens.input_ids[b].size();
    }
    const std::vector<float> x = forward(pool, tokens);
    for (size_t b = 0; b < batch; ++b) {
      // sum(hidden * mask) / clamp(sum(mask), 1e-9), as sentence-transformers' mean pooling.
      std::vector<double> sum(hidden, 0.0);
      double count = 0.0;
      for (size_t t = 0; t < seqs.length(b); ++t) {
        if (tokens.attention_mask[b][t] == 0) continue;
        const float* row = x.data() + (seqs.offsets[b] + t) * hidden;
        for (size_t i = 0; i < hidden; ++i) sum[i] += row[i];
        count += 1.0;
      }
      for (size_t i = 0; i < hidden; ++i)
        out[b * hidden + i] = static_cast<float>(sum[i] / std::max(count, 1e-9));
    }
    return out;
  }
  PackedSequences seqs;
  std::vector<int64_t> key_mask;
  std::vector<float> x = embed(pool, tokens, seqs, key_mask);
  const AttentionOptions attn = attention_options(key_mask);
  EncoderWorkspace ws;
  if (layers_.empty()) {
    for (size_t b = 0; b < batch; ++b)
      std::memcpy(out.data() + b * hidden, x.data() + seqs.offsets[b] * hidden,
                  hidden * sizeof(float));
  } else {
    // Only the [CLS] rows of the last layer are used: compute just those.
    std::vector<size_t> cls_rows(batch);
    for (size_t b = 0; b < batch; ++b) cls_rows[b] = seqs.offsets[b];
    for (size_t i = 0; i + 1 < layers_.size(); ++i)
      post_ln_encoder_layer(pool, x.data(), seqs, layers_[i], attn, ws);
    post_ln_encoder_layer_for_rows(pool, x.data(), seqs, cls_rows, layers_.back(), attn, ws,
                                   out.data());
  }
  if (pooling == TextPooling::pooler) return apply_pooler(pool, out.data(), batch);
  return out;
}

std::string model_folder_name(const fs::path& dir) {
  const fs::path abs = fs::absolute(dir).lexically_normal();
  std::string name = abs.filename().string();
  if (name.empty()) name = abs.parent_path().filename().string();
  return name;
}

std::unique_ptr<BertModel> BertModel::load(const fs::path& dir, std::shared_ptr<ThreadPool> pool,
                                           Precision precision) {
  MMFUSE_CHECK(fs::is_directory(dir), not_found, dir.string() + ": model folder not found");
  std::unique_ptr<BertModel> m(new BertModel());
  m->pool_ = pool_or_own(std::move(pool));
  m->name_ = model_folder_name(dir);
  const fs::path config_path = dir / "config.json";
  const nlohmann::json config = read_json_file(config_path);
  const std::string type = JsonFields(config, config_path.string()).string("model_type", "");
  MMFUSE_CHECK(
      type == "bert", unsupported,
      config_path.string() + ": model_type \"" + type + "\" is not a BERT model (\"bert\")");
  m->config_ = BertConfig::from_json(config, config_path.string());
  m->store_ = WeightStore::open_folder(dir);
  WeightStore& store = *m->store_;
  store.set_linear_precision(precision);
  store.enable_packed_cache();  // a second load maps the packed layers (io/packed_weight_cache.h)
  // The packed cache's checksums are verified over the pool's threads
  // while one of them reads the tokenizer.
  store.verify_packed_cache(*m->pool_, [&] {
    m->tokenizer_ = std::make_unique<WordPieceTokenizer>(WordPieceTokenizer::from_folder(dir));
  });
  // BertModel checkpoints name tensors "embeddings.*"; task heads (BertForMaskedLM, ...)
  // "bert.embeddings.*".
  std::string prefix;
  if (!store.has("embeddings.word_embeddings.weight") &&
      store.has("bert.embeddings.word_embeddings.weight"))
    prefix = "bert.";
  m->encoder_ = std::make_unique<BertEncoder>(store, m->config_, prefix,
                                              store.has(prefix + "pooler.dense.weight"));
  MMFUSE_CHECK(m->tokenizer_->vocab_size() <= static_cast<size_t>(m->config_.vocab_size), bad_input,
               (dir / "vocab.txt").string() + ": " + std::to_string(m->tokenizer_->vocab_size()) +
                   " tokens, more than config vocab_size " + std::to_string(m->config_.vocab_size));
  m->store_->save_packed_cache();
  return m;
}

size_t BertModel::context_length() const {
  return std::min(tokenizer_->options().model_max_length,
                  static_cast<size_t>(config_.max_position_embeddings));
}

std::vector<float> BertModel::embed_texts(const std::vector<std::string>& texts,
                                          TextPooling pooling) const {
  // Unpadded rows: padding cannot change the unpadded positions' outputs.
  const TokenBatch tokens = tokenizer_->encode_batch(texts, context_length(), /*pad=*/false);
  return encoder_->pooled(*pool_, tokens, pooling);
}

}  // namespace mmfuse
