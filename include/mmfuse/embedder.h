// mmfuse public API: embed texts and images with a Hugging Face model folder,
// and classify images zero-shot. Include this (and link libmmfuse) to use the
// engine from another C++ program.
//
//   auto model = mmfuse::Embedder::open("models/openai--clip-vit-base-patch32");
//   auto vectors = model->embed_texts({"a photo of a cat"});   // unit-length rows
//
// Thread-safety: any number of Embedders may be called from any number of
// threads at once, and results never depend on who else is computing: the
// weights are read-only after open(), and each Embedder computes on its own
// ThreadPool (or one it was handed), which runs one caller's loop at a time.
// Nothing here changes process-wide state.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mmfuse/error.h"
#include "mmfuse/thread_pool.h"

namespace mmfuse {

struct EmbedOptions {
  bool normalize = true;  // L2-normalise (false: the projected features, HF get_*_features)
  // Text-only encoders (BERT): how a text becomes one vector: "cls"
  // (last_hidden_state[:, 0], the default), "mean" (over the attended tokens)
  // or "pooler" (BertPooler). Empty = the default. Text-image models take only "".
  std::string pooling;
};

// How a model is opened.
struct EmbedderOpenOptions {
  // The encoder layers' arithmetic: "f32" (default, exact to the reference),
  // "bf16" (bfloat16 weights and inputs, float32 sums; runs as f32 with a
  // warning on CPUs without bf16 instructions) or "int8" (dynamic
  // quantisation: int8 weights per output channel, inputs quantised per token
  // at run time, as PyTorch's / ONNX Runtime's quantize_dynamic). Embeddings
  // then differ from f32 by a cosine of about 0.99-0.9999 (docs/quantization.md).
  std::string dtype = "f32";
  // The cores to compute on: `pool` when set, else a pool of `threads` (0 = all).
  std::shared_ptr<ThreadPool> pool;
  int threads = 0;
};

struct LabelScore {
  std::string label;
  float score = 0.0f;  // probability over the given labels
};

class MMFUSE_API Embedder {
 public:
  virtual ~Embedder() = default;

  // Opens a model folder (config.json + safetensors + tokenizer files). The
  // architecture is chosen from config.json's model_type: "clip",
  // "chinese_clip" (text and images) or "bert" (text only). The Embedder owns
  // a pool of `threads` cores (0 = all cores) that every call computes with.
  // Throws mmfuse::Error naming the bad file/tensor/field.
  static std::unique_ptr<Embedder> open(const std::string& model_dir, int threads = 0);
  // The same, computing on `pool`, which several models may share (their
  // calls then take turns on those cores instead of competing for them).
  static std::unique_ptr<Embedder> open(const std::string& model_dir,
                                        std::shared_ptr<ThreadPool> pool);
  // The same with options (dtype, pool or thread count). Throws bad_input for
  // an unknown dtype.
  static std::unique_ptr<Embedder> open(const std::string& model_dir,
                                        const EmbedderOpenOptions& options);

  virtual const std::string& name() const = 0;
  virtual int dim() const = 0;
  virtual bool embeds_images()
      const = 0;  // false: a text-only encoder (image calls throw bad_input)

  // One row of dim() floats per input, in input order.
  virtual std::vector<std::vector<float>> embed_texts(const std::vector<std::string>& texts,
                                                      const EmbedOptions& options = {}) = 0;
  // Image files (JPEG, PNG, WebP, BMP) or encoded image bytes.
  virtual std::vector<std::vector<float>> embed_image_files(const std::vector<std::string>& paths,
                                                            const EmbedOptions& options = {}) = 0;
  virtual std::vector<std::vector<float>> embed_encoded_images(
      const std::vector<std::vector<uint8_t>>& encoded, const EmbedOptions& options = {}) = 0;

  // Zero-shot classification: softmax over exp(logit_scale) * cosine between the
  // image and each label put through `prompt_template` ("{}" = the label; empty
  // = default_prompt_template()). Sorted by score, highest first.
  virtual std::vector<LabelScore> classify(const std::string& image_path,
                                           const std::vector<std::string>& labels,
                                           const std::string& prompt_template = "") = 0;
  // The model's own zero-shot template, used when none is given
  // ("a photo of a {}."; Chinese-CLIP: "一张{}的照片。").
  virtual std::string default_prompt_template() const { return "a photo of a {}."; }
};

}  // namespace mmfuse
