// wav2vec2 with a CTC head (Baevski et al. 2020), as Hugging Face's
// Wav2Vec2ForCTC computes it: a 1-D conv feature encoder over the raw 16 kHz
// waveform (one frame per 320 samples), a feature projection, a grouped
// positional conv, a post-LN (base) or pre-LN (large/lv60) transformer encoder
// and a linear LM head giving per-frame logits over the character vocabulary.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "io/model_folder.h"
#include "models/transformer.h"
#include "models/wav2vec2_config.h"
#include "text/ctc_vocabulary.h"

namespace mmfuse {

// Intermediate results a caller may ask for (parity tests, debugging).
struct Wav2Vec2Trace {
  std::vector<float> extract_features;  // [frames, conv_dim.back()]: LayerNorm'd conv features
  std::vector<std::vector<float>>
      hidden_states;  // HF encoder hidden_states[K], [frames, hidden] each
};

// How long audio is cut up (HF pipeline chunk_length_s / stride_length_s).
// Chunks overlap by `stride_s` on each side; each output frame is taken from
// exactly one chunk, the one where it lies outside the strides, so the stitched
// logits have one row per frame of the whole clip.
struct ChunkOptions {
  double chunk_s = 30.0;  // 0 = never chunk
  double stride_s = 5.0;  // each side; must leave chunk_s - 2 * stride_s > 0
};

// One chunk of a long clip: samples [sample_begin, sample_end), whose frames
// are global frames first_frame, first_frame + 1, ...; it contributes the
// global frames [own_begin, own_end) to the stitched logits.
struct ChunkPlan {
  size_t sample_begin = 0, sample_end = 0;
  size_t first_frame = 0;
  size_t own_begin = 0, own_end = 0;
};

// The chunks for a clip of `samples` at `rate` Hz. Chunk and stride lengths are
// rounded to whole frames (HF pipeline's align_to); a clip no longer than one
// chunk (or chunk_s == 0) is one chunk. The owned ranges tile [0, frames).
std::vector<ChunkPlan> plan_chunks(size_t samples, int rate, const Wav2Vec2Config& config,
                                   const ChunkOptions& opt);

class Wav2Vec2ForCtc {
 public:
  // Loads config.json, model.safetensors (or shards), vocab.json (+ tokenizer
  // config) and preprocessor_config.json (optional) from a HF folder.
  // `precision`: the transformer layers' arithmetic (--dtype); the conv
  // feature encoder, its projection, the positional conv and the CTC head stay f32.
  static std::unique_ptr<Wav2Vec2ForCtc> load(const std::filesystem::path& dir,
                                              Precision precision = Precision::f32);

  const std::string& name() const { return name_; }
  const Wav2Vec2Config& config() const { return config_; }
  const Wav2Vec2FeatureConfig& feature_config() const { return features_; }
  const CtcVocabulary& vocabulary() const { return *vocab_; }
  size_t weight_bytes() const { return store_->total_bytes(); }
  // Seconds per output frame (320 / 16000 = 0.02).
  double frame_seconds() const;

  // Logits [frames, vocab] for one utterance of already feature-extracted
  // input_values (`samples` floats). Throws bad_input when the clip is shorter
  // than one frame's receptive field.
  std::vector<float> logits(ThreadPool& pool, const float* input_values, size_t samples,
                            Wav2Vec2Trace* trace = nullptr) const;

  // The feature extractor on raw samples at the model's rate: normalised per
  // utterance when the folder says so.
  std::vector<float> input_values(const float* samples, size_t n) const;

  // Logits for a raw clip at the model's rate, cut into overlapping chunks
  // when it is longer than opt.chunk_s (each chunk feature-extracted on its
  // own, as the HF pipeline does). `name` appears in errors.
  std::vector<float> transcribe_logits(ThreadPool& pool, const std::vector<float>& samples,
                                       const ChunkOptions& opt, const std::string& name) const;

 private:
  Wav2Vec2ForCtc() = default;

  struct ConvLayer {
    Linear conv;                // weight reordered to [out, kernel * in] (time-major im2col rows)
    std::vector<float> weight;  // owns the reordered weights
    LayerNormWeights norm;  // LayerNorm (layer style) or GroupNorm affine (group style, layer 0)
    bool has_norm = false;
    int kernel = 0, stride = 0, in = 0, out = 0;
  };

  std::vector<float> feature_encoder(ThreadPool& pool, const float* input, size_t samples,
                                     size_t* frames) const;
  void positional_conv(ThreadPool& pool, const float* x, size_t frames, float* out) const;

  std::string name_;
  Wav2Vec2Config config_;
  Wav2Vec2FeatureConfig features_;
  std::shared_ptr<WeightStore> store_;
  std::unique_ptr<CtcVocabulary> vocab_;
  std::vector<ConvLayer> convs_;
  LayerNormWeights projection_norm_;
  Linear projection_;
  // Positional conv: per group, weights [group_width, kernel * group_width]
  // (weight norm applied), as a GEMM over time-major im2col rows.
  std::vector<Linear> pos_conv_;
  std::vector<float> pos_conv_weight_;
  const float* pos_conv_bias_ = nullptr;
  LayerNormWeights encoder_norm_;
  std::vector<EncoderLayer> layers_;
  Linear lm_head_;
};

}  // namespace mmfuse
