// The image side of BLIP-2 (transformers 4.44 Blip2ForConditionalGeneration):
// BlipImageProcessor pixel values -> vision tower -> Q-Former over the query
// tokens -> language_projection. Its output, num_query_tokens rows of the
// language model's hidden size, goes in front of the prompt's embeddings
// (4.44 puts no image tokens in input_ids): a PromptSegment with rows > 0.
#pragma once

#include <filesystem>
#include <memory>
#include <vector>

#include "core/thread_pool.h"
#include "io/model_folder.h"
#include "models/blip2_config.h"
#include "models/blip2_qformer.h"
#include "models/blip2_vision.h"
#include "models/language_model.h"
#include "vision/image.h"
#include "vision/image_processor.h"

namespace mmfuse {

class Blip2ImageEncoder {
 public:
  // Loads vision_model.*, query_tokens, qformer.* and language_projection.*
  // from `store` (kept alive by the encoder: weights are read from it in
  // place, F16/BF16 linears without a float32 copy) and, when `dir` has one,
  // preprocessor_config.json (checked to give image_size x image_size).
  // Computes on `pool` (or a pool of its own when null).
  Blip2ImageEncoder(std::shared_ptr<WeightStore> store, const Blip2Config& config,
                    std::shared_ptr<ThreadPool> pool, const std::filesystem::path& dir = {});

  // All methods are const and safe to call from many threads at once.

  // BlipImageProcessor's pixel_values for one image: [3, image_size, image_size].
  // Throws not_found when the folder has no preprocessor_config.json.
  std::vector<float> pixel_values(const Image& image) const;
  // Vision tower outputs for pixel_values [batch, 3, S, S].
  Blip2VisionOutput vision(const float* pixel_values, size_t batch) const;
  // Q-Former last_hidden_state [batch, queries, qformer hidden] for the
  // vision tower's last_hidden_state [batch, image tokens, vision hidden].
  std::vector<float> qformer(const float* image_embeds, size_t batch) const;
  // language_projection of Q-Former outputs: [batch, queries, text hidden].
  std::vector<float> project(const float* qformer_output, size_t batch) const;

  // The rows the language model takes, [batch, queries, text hidden]: the
  // three steps above on pixel_values [batch, 3, S, S].
  std::vector<float> language_inputs(const float* pixel_values, size_t batch) const;
  // The same for one image, as a prompt segment of query_rows() rows.
  PromptSegment language_inputs(const Image& image) const;

  size_t query_rows() const { return static_cast<size_t>(config_.num_query_tokens); }
  int text_hidden_size() const { return config_.text_hidden_size; }
  int image_size() const { return config_.vision.image_size; }
  const Blip2Config& config() const { return config_; }
  ThreadPool& pool() const { return *pool_; }

 private:
  Blip2Config config_;
  std::shared_ptr<WeightStore> store_;
  std::shared_ptr<ThreadPool> pool_;
  std::unique_ptr<ImageProcessorConfig> image_processor_;  // null without preprocessor_config.json
  std::filesystem::path dir_;
  std::unique_ptr<Blip2VisionTower> vision_;
  std::unique_ptr<Blip2QFormer> qformer_;
  Linear language_projection_;
};

}  // namespace mmfuse
