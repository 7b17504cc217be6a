// Shared transformer encoder blocks (the ViT/CLIP pre-LN layer and the BERT
// post-LN layer), built from the ops in core/ops.h. A model file loads weights
// into these structs and calls the forward functions.
#pragma once

#include <string>
#include <vector>

#include "core/ops.h"
#include "io/model_folder.h"

namespace mmfuse {

struct EncoderLayer {
  LayerNormWeights ln_attn;  // before attention (pre-LN) or after it (post-LN)
  Linear q, k, v, o;
  LayerNormWeights ln_mlp;   // before the MLP (pre-LN) or after it (post-LN)
  Linear fc1, fc2;
  int heads = 1;
  Activation act = Activation::gelu;
};

// Intermediate results a caller may ask for (parity tests, debugging).
struct TowerTrace {
  bool keep_hidden_states = false;         // hidden_states[K] of the first input
  bool keep_last_hidden_state = false;     // the whole last_hidden_state
  std::vector<std::vector<float>> hidden_states;  // K = 0..layers, [tokens, hidden] each
  std::vector<float> last_hidden_state;           // [batch, tokens, hidden]
};

// Scratch memory reused across layers and calls (not shared between threads).
struct EncoderWorkspace {
  std::vector<float> normed, q, k, v, context, hidden;
};

// Loads nn.Linear weights `prefix.weight` [out, in] and, if `with_bias`, `prefix.bias` [out],
// packed in the store's linear_precision() (f32, bf16 or int8).
Linear load_linear(WeightStore& store, const std::string& prefix, int in, int out, bool with_bias = true);
// The same, always float32: heads whose outputs are the model's answer (the
// CLIP projections, BERT's pooler, CTC logits), where the int8/bf16 error is
// not worth the little time they take (they run on one row per input).
Linear load_linear_exact(WeightStore& store, const std::string& prefix, int in, int out,
                         bool with_bias = true);
LayerNormWeights load_layer_norm(WeightStore& store, const std::string& prefix, int dim, float eps);
// The same, but F16/BF16 weights stay in their stored type (zero copy from the
// map; linear() widens them as it goes), so a half-precision tower takes half
// the memory of a float32 copy. F32 weights load as load_linear's (packed
// unless `pack` is false). The bias is float32.
Linear load_linear_stored(WeightStore& store, const std::string& prefix, int in, int out,
                          bool with_bias = true, bool pack = true);
// Rows [first, first + count) of an unpacked Linear's [out, in] weights and bias
// as a Linear of their own (packed when float32): one product of a fused
// projection, e.g. the q, k or v third of BLIP-2's `qkv`.
Linear linear_rows(const Linear& whole, int first, int count);

// ViT input embeddings (CLIP, BLIP-2): the patch-embedding conv as a GEMM over
// image patches (`patch_embedding`: [hidden, channels * patch * patch], conv
// weight layout, with or without bias), the class token in front, positions
// added. pixel_values: [batch, channels, image_size, image_size]; returns
// [batch, 1 + (image_size / patch)^2, hidden].
std::vector<float> vit_embeddings(ThreadPool& pool, const float* pixel_values, size_t batch,
                                  int channels, int image_size, int patch_size,
                                  const Linear& patch_embedding, const float* class_embedding,
                                  const float* position_embedding);

// x[rows, hidden] <- x + attn(ln_attn(x)); x <- x + mlp(ln_mlp(x))   (CLIP, ViT, wav2vec2-lv60)
void pre_ln_encoder_layer(ThreadPool& pool, float* x, const PackedSequences& seqs,
                          const EncoderLayer& layer, const AttentionOptions& attn,
                          EncoderWorkspace& ws);

// x <- ln_attn(x + attn(x)); x <- ln_mlp(x + mlp(x))   (post-LN: BERT, wav2vec2-base)
void post_ln_encoder_layer(ThreadPool& pool, float* x, const PackedSequences& seqs,
                           const EncoderLayer& layer, const AttentionOptions& attn,
                           EncoderWorkspace& ws);

// The two halves of that post-LN layer, for layers with more between them
// (the BLIP-2 Q-Former's cross-attention); post_ln_encoder_layer runs them in
// a row. Attention: x[seqs.rows(), hidden] <- ln(x + o(attention(q(x), k(m), v(m)))),
// where m is x itself or, for cross-attention, `memory` [memory_seqs.rows(),
// k.in] (sequence s of x attends to sequence s of memory).
void post_ln_attention_block(ThreadPool& pool, float* x, const PackedSequences& seqs,
                             const Linear& q, const Linear& k, const Linear& v, const Linear& o,
                             const LayerNormWeights& ln, const AttentionOptions& attn,
                             EncoderWorkspace& ws, const float* memory = nullptr,
                             const PackedSequences* memory_seqs = nullptr);
// Feed-forward: x[rows, hidden] <- ln(x + fc2(act(fc1(x)))).
void post_ln_mlp_block(ThreadPool& pool, float* x, size_t rows, const Linear& fc1,
                       const Linear& fc2, Activation act, const LayerNormWeights& ln,
                       EncoderWorkspace& ws);

// The same pre-LN layer computed only for one row per sequence (rows[s], a packed row
// index): all rows feed keys and values, but queries, the output projection
// and the MLP run for those rows only. Writes [seqs.count(), hidden] to `out`.
// Used for the last layer of a pooled encoder, whose other rows are discarded.
void pre_ln_encoder_layer_for_rows(ThreadPool& pool, const float* x, const PackedSequences& seqs,
                                   const std::vector<size_t>& rows, const EncoderLayer& layer,
                                   const AttentionOptions& attn, EncoderWorkspace& ws, float* out);

// The post-LN layer for one row per sequence (rows[s], a packed row index), as
// pre_ln_encoder_layer_for_rows: writes [seqs.count(), hidden] to `out`.
void post_ln_encoder_layer_for_rows(ThreadPool& pool, const float* x, const PackedSequences& seqs,
                                    const std::vector<size_t>& rows, const EncoderLayer& layer,
                                    const AttentionOptions& attn, EncoderWorkspace& ws, float* out);

}  // namespace mmfuse
