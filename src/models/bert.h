// BERT (Devlin et al. 2019) as Hugging Face's BertModel computes it: word +
// position + token-type embeddings and LayerNorm, post-LN encoder layers, and
// the tanh pooler on [CLS]. BertEncoder is also Chinese-CLIP's text tower.
#pragma once

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "io/model_folder.h"
#include "models/transformer.h"
#include "text/wordpiece_tokenizer.h"

namespace mmfuse {

// BertConfig / ChineseCLIPTextConfig fields, with the HF class defaults (4.44).
struct BertConfig {
  int vocab_size = 30522;
  int hidden_size = 768;
  int num_hidden_layers = 12;
  int num_attention_heads = 12;
  int intermediate_size = 3072;
  Activation hidden_act = Activation::gelu;
  int max_position_embeddings = 512;
  int type_vocab_size = 2;
  float layer_norm_eps = 1e-12f;

  // Parses the object (a BERT config.json or Chinese-CLIP's text_config);
  // `where` names it in errors. Only absolute position embeddings are supported.
  static BertConfig from_json(const nlohmann::json& config, const std::string& where);
};

// How a text embedding is read off the encoder.
enum class TextPooling {
  cls,     // last_hidden_state[:, 0]
  mean,    // mean of last_hidden_state over the positions with attention_mask 1
  pooler,  // BertPooler: tanh(dense(last_hidden_state[:, 0]))
};
// "cls" | "mean" | "pooler"; anything else is bad_input.
TextPooling parse_text_pooling(const std::string& name);
const char* to_string(TextPooling pooling);

class BertEncoder {
 public:
  // Loads `prefix`embeddings.*, `prefix`encoder.layer.{i}.* and, if
  // `with_pooler`, `prefix`pooler.dense.*. prefix is "" (BertModel), "bert."
  // (task checkpoints such as BertForMaskedLM) or "text_model." (Chinese-CLIP).
  BertEncoder(WeightStore& store, const BertConfig& config, const std::string& prefix,
              bool with_pooler);

  // last_hidden_state for every position of every row ([sum of row lengths,
  // hidden], rows packed one after another). Rows may be padded (attention_mask
  // 0 keys are never attended to) or of different lengths; token_type_ids may
  // be empty (all 0). The trace keeps hidden_states[K] of the first row.
  std::vector<float> forward(ThreadPool& pool, const TokenBatch& tokens,
                             TowerTrace* trace = nullptr) const;
  // The pooled text vector per row, [batch, hidden]. cls and pooler compute the
  // last layer for the [CLS] rows only.
  std::vector<float> pooled(ThreadPool& pool, const TokenBatch& tokens, TextPooling pooling) const;
  // BertPooler on [CLS] vectors: tanh(dense(cls)), [batch, hidden]. Throws
  // bad_input when the checkpoint has no pooler.
  std::vector<float> apply_pooler(ThreadPool& pool, const float* cls, size_t batch) const;

  bool has_pooler() const { return has_pooler_; }
  const BertConfig& config() const { return config_; }

 private:
  // Embeddings + LayerNorm for every position; fills seqs and the key mask.
  std::vector<float> embed(ThreadPool& pool, const TokenBatch& tokens, PackedSequences& seqs,
                           std::vector<int64_t>& key_mask) const;
  AttentionOptions attention_options(const std::vector<int64_t>& key_mask) const;

  BertConfig config_;
  const float* word_embeddings_ = nullptr;        // [vocab, hidden]
  const float* position_embeddings_ = nullptr;    // [max_positions, hidden]
  const float* token_type_embeddings_ = nullptr;  // [type_vocab, hidden]
  LayerNormWeights embeddings_layer_norm_;
  std::vector<EncoderLayer> layers_;
  Linear pooler_;
  bool has_pooler_ = false;
};

// A text-only BERT folder (model_type "bert"): config.json, weights, vocab.txt.
class BertModel {
 public:
  // Computes on `pool` (shared with others) or, when null, on a pool of its own.
  // `precision`: the encoder layers' arithmetic (--dtype; the pooler stays f32).
  static std::unique_ptr<BertModel> load(const std::filesystem::path& dir,
                                         std::shared_ptr<ThreadPool> pool = nullptr,
                                         Precision precision = Precision::f32);

  const std::string& name() const { return name_; }
  int dim() const { return config_.hidden_size; }
  ThreadPool& pool() const { return *pool_; }
  const BertEncoder& encoder() const { return *encoder_; }
  const WordPieceTokenizer& tokenizer() const { return *tokenizer_; }
  size_t weight_bytes() const { return store_->total_bytes(); }
  // Texts are cut to this many tokens: min(model_max_length, max_position_embeddings).
  size_t context_length() const;

  // Text vectors before any normalisation, [texts, dim()].
  std::vector<float> embed_texts(const std::vector<std::string>& texts, TextPooling pooling) const;

 private:
  BertModel() = default;
  std::shared_ptr<ThreadPool> pool_;
  std::string name_;
  BertConfig config_;
  std::shared_ptr<WeightStore> store_;
  std::unique_ptr<WordPieceTokenizer> tokenizer_;
  std::unique_ptr<BertEncoder> encoder_;
};

// The folder's name as models report it ("bert-base-chinese" for ".../bert-base-chinese/").
std::string model_folder_name(const std::filesystem::path& dir);

}  // namespace mmfuse
