#include "models/blip2_image_encoder.h"

#include "mmfuse/error.h"
#include "models/clip.h"

namespace mmfuse {

Blip2ImageEncoder::Blip2ImageEncoder(std::shared_ptr<WeightStore> store, const Blip2Config& config,
                                     std::shared_ptr<ThreadPool> pool,
                                     const std::filesystem::path& dir)
    : config_(config), store_(std::move(store)), pool_(pool_or_own(std::move(pool))), dir_(dir) {
  MMFUSE_CHECK(store_ != nullptr, internal, "BLIP-2 image encoder: no weights");
  WeightStore& s = *store_;
  vision_ = std::make_unique<Blip2VisionTower>(s, config_.vision, "vision_model");
  qformer_ = std::make_unique<Blip2QFormer>(s, config_.qformer, config_.num_query_tokens, "qformer",
                                            "query_tokens");
  language_projection_ = load_linear_stored(s, "language_projection", config_.qformer.hidden_size,
                                            config_.text_hidden_size);
  if (!dir.empty()) image_processor_ = load_image_processor(dir, config_.vision.image_size);
}

std::vector<float> Blip2ImageEncoder::pixel_values(const Image& image) const {
  MMFUSE_CHECK(image_processor_ != nullptr, not_found,
               (dir_ / "preprocessor_config.json").string() +
                   ": missing; it is needed to preprocess images");
  const size_t side = static_cast<size_t>(config_.vision.image_size);
  std::vector<float> pixels(3 * side * side);
  preprocess_image(image, *image_processor_, pixels.data());
  return pixels;
}

Blip2VisionOutput Blip2ImageEncoder::vision(const float* pixel_values, size_t batch) const {
  return vision_->forward(*pool_, pixel_values, batch);
}

std::vector<float> Blip2ImageEncoder::qformer(const float* image_embeds, size_t batch) const {
  return qformer_->forward(*pool_, image_embeds, batch,
                           static_cast<size_t>(config_.vision.num_positions()));
}

std::vector<float> Blip2ImageEncoder::project(const float* qformer_output, size_t batch) const {
  const size_t rows = batch * query_rows();
  std::vector<float> out(rows * static_cast<size_t>(config_.text_hidden_size));
  linear(*pool_, qformer_output, rows, language_projection_, out.data());
  return out;
}

std::vector<float> Blip2ImageEncoder::language_inputs(const float* pixel_values,
                                                      size_t batch) const {
  const Blip2VisionOutput seen = vision(pixel_values, batch);
  const std::vector<float> queries = qformer(seen.last_hidden_state.data(), batch);
  return project(queries.data(), batch);
}

PromptSegment Blip2ImageEncoder::language_inputs(const Image& image) const {
  const std::vector<float> pixels = pixel_values(image);
  PromptSegment segment;
  segment.rows = query_rows();
  segment.embeddings = language_inputs(pixels.data(), 1);
  return segment;
}

}  // namespace mmfuse
