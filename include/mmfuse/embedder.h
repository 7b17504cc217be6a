// mmfuse public API: embed texts and images with a Hugging Face model folder,
// and classify images zero-shot. Include this (and link libmmfuse) to use the
// engine from another C++ program.
//
//   auto model = mmfuse::Embedder::open("models/openai--clip-vit-base-patch32");
//   auto vectors = model->embed_texts({"a photo of a cat"});   // unit-length rows
//
// Thread-safety: an Embedder may be shared between threads, but calls are
// serialised internally (each call already uses all the cores it was given).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mmfuse/error.h"

namespace mmfuse {

struct EmbedOptions {
  bool normalize = true;  // L2-normalise (false: the projected features, HF get_*_features)
  // Text-only encoders (BERT): how a text becomes one vector: "cls"
  // (last_hidden_state[:, 0], the default), "mean" (over the attended tokens)
  // or "pooler" (BertPooler). Empty = the default. Text-image models take only "".
  std::string pooling;
};

struct LabelScore {
  std::string label;
  float score = 0.0f;  // probability over the given labels
};

class Embedder {
 public:
  virtual ~Embedder() = default;

  // Opens a model folder (config.json + safetensors + tokenizer files). The
  // architecture is chosen from config.json's model_type: "clip",
  // "chinese_clip" (text and images) or "bert" (text only). `threads` = cores to
  // use for every call (0 = all). Throws mmfuse::Error naming the bad file/tensor.
  static std::unique_ptr<Embedder> open(const std::string& model_dir, int threads = 0);

  virtual const std::string& name() const = 0;
  virtual int dim() const = 0;
  virtual bool embeds_images() const = 0;  // false: a text-only encoder (image calls throw bad_input)

  // One row of dim() floats per input, in input order.
  virtual std::vector<std::vector<float>> embed_texts(const std::vector<std::string>& texts,
                                                      const EmbedOptions& options = {}) = 0;
  // Image files (JPEG, PNG, WebP, BMP) or encoded image bytes.
  virtual std::vector<std::vector<float>> embed_image_files(const std::vector<std::string>& paths,
                                                            const EmbedOptions& options = {}) = 0;
  virtual std::vector<std::vector<float>> embed_encoded_images(
      const std::vector<std::vector<uint8_t>>& encoded, const EmbedOptions& options = {}) = 0;

  // Zero-shot classification: softmax over exp(logit_scale) * cosine between the
  // image and each label put through `prompt_template` ("{}" = the label).
  // Sorted by score, highest first.
  virtual std::vector<LabelScore> classify(const std::string& image_path,
                                           const std::vector<std::string>& labels,
                                           const std::string& prompt_template = "a photo of a {}.") = 0;
  // The template `mmfuse classify` uses when none is given ("a photo of a {}.";
  // Chinese-CLIP: "一张{}的照片。").
  virtual std::string default_prompt_template() const { return "a photo of a {}."; }
};

}  // namespace mmfuse
