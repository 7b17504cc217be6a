// The BLIP-2 Querying Transformer (transformers 4.44 Blip2QFormerModel run on
// the learned query tokens, as Blip2ForConditionalGeneration does): the
// queries go through `layernorm`, then BERT-style post-LN layers of
// self-attention, cross-attention to the image tokens (on layers where
// layer % cross_attention_frequency == 0) and the query feed-forward
// (intermediate_query / output_query). No word or position embeddings; the
// text feed-forward in the file is not used for queries.
#pragma once

#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "io/model_folder.h"
#include "models/blip2_config.h"
#include "models/transformer.h"

namespace mmfuse {

class Blip2QFormer {
 public:
  // Loads `prefix`.layernorm / .encoder.layer.{i} and the [1, queries, hidden]
  // tensor `query_tokens_name`. The store must outlive the Q-Former.
  Blip2QFormer(WeightStore& store, const Blip2QFormerConfig& config, int num_query_tokens,
               const std::string& prefix, const std::string& query_tokens_name);

  // image_embeds: [batch, image_tokens, encoder_hidden_size] (the vision
  // tower's post-layernormed last_hidden_state, every token attended).
  // Returns last_hidden_state [batch, queries, hidden]. Thread-safe.
  std::vector<float> forward(ThreadPool& pool, const float* image_embeds, size_t batch,
                             size_t image_tokens) const;
  int num_query_tokens() const { return queries_; }
  const Blip2QFormerConfig& config() const { return config_; }

 private:
  struct Layer {
    Linear q, k, v, o;
    LayerNormWeights ln_attn;
    bool has_cross_attention = false;
    Linear cross_q, cross_k, cross_v, cross_o;  // keys / values from encoder_hidden_size
    LayerNormWeights ln_cross;
    Linear fc1, fc2;  // intermediate_query.dense, output_query.dense
    LayerNormWeights ln_mlp;
  };

  Blip2QFormerConfig config_;
  int queries_ = 0;
  const float* query_tokens_ = nullptr;  // [queries, hidden]
  LayerNormWeights layernorm_;
  std::vector<Layer> layers_;
};

}  // namespace mmfuse
