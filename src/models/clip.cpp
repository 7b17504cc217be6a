// ClipModel: ties the two towers, their projections, the tokenizer and the
// image processor of one Hugging Face CLIP folder together.
#include "models/clip.h"

#include <cmath>

#include "mmfuse/error.h"

namespace mmfuse {

namespace fs = std::filesystem;

void l2_normalize_rows(float* x, size_t rows, size_t dim) {
  for (size_t r = 0; r < rows; ++r) {
    float* row = x + r * dim;
    double sq = 0.0;
    for (size_t i = 0; i < dim; ++i) sq += static_cast<double>(row[i]) * row[i];
    if (sq == 0.0) continue;
    const float inv = static_cast<float>(1.0 / std::sqrt(sq));
    for (size_t i = 0; i < dim; ++i) row[i] *= inv;
  }
}

std::unique_ptr<ImageProcessorConfig> load_image_processor(const fs::path& dir, int image_size) {
  const fs::path pre = dir / "preprocessor_config.json";
  if (!fs::exists(pre)) return nullptr;
  auto processor = std::make_unique<ImageProcessorConfig>(ImageProcessorConfig::from_file(pre));
  MMFUSE_CHECK(processor->out_height() == image_size && processor->out_width() == image_size,
               bad_input,
               pre.string() + ": images come out " + std::to_string(processor->out_height()) + "x" +
                   std::to_string(processor->out_width()) + " but vision_config.image_size is " +
                   std::to_string(image_size));
  return processor;
}

std::unique_ptr<ClipModel> ClipModel::load(const fs::path& dir, std::shared_ptr<ThreadPool> pool,
                                           Precision precision) {
  MMFUSE_CHECK(fs::is_directory(dir), not_found, dir.string() + ": model folder not found");
  std::unique_ptr<ClipModel> m(new ClipModel());
  m->pool_ = pool_or_own(std::move(pool));
  m->dir_ = dir;
  m->name_ = fs::absolute(dir).lexically_normal().filename().string();
  if (m->name_.empty())
    m->name_ = fs::absolute(dir).lexically_normal().parent_path().filename().string();
  const fs::path config_path = dir / "config.json";
  m->config_ = ClipConfig::from_json(read_json_file(config_path), config_path.string());
  m->store_ = WeightStore::open_folder(dir);
  WeightStore& store = *m->store_;
  // Both towers' encoder layers in `precision`; the patch embedding (a conv on
  // raw pixels) and the projections stay float32.
  store.set_linear_precision(precision);
  store.enable_packed_cache();  // a second load maps the packed layers (io/packed_weight_cache.h)
  // The packed cache's checksums are verified over the pool's threads
  // while one of them reads the tokenizer (its files take ~0.1 s to parse).
  store.verify_packed_cache(*m->pool_, [&] {
    m->tokenizer_ = std::make_unique<ClipTokenizer>(ClipTokenizer::from_folder(dir));
  });
  m->text_ = std::make_unique<ClipTextTower>(store, m->config_.text, "text_model");
  m->vision_ = std::make_unique<ClipVisionTower>(store, m->config_.vision, "vision_model");
  m->text_projection_ = load_linear_exact(store, "text_projection", m->config_.text.hidden_size,
                                    m->config_.projection_dim, false);
  m->visual_projection_ = load_linear_exact(store, "visual_projection", m->config_.vision.hidden_size,
                                      m->config_.projection_dim, false);
  m->logit_scale_ = std::exp(*store.f32("logit_scale", {}));
  m->image_processor_ = load_image_processor(dir, m->config_.vision.image_size);
  m->store_->save_packed_cache();
  return m;
}

const ImageProcessorConfig& ClipModel::image_processor() const {
  MMFUSE_CHECK(
      image_processor_ != nullptr, not_found,
      (dir_ / "preprocessor_config.json").string() + ": missing; it is needed to embed images");
  return *image_processor_;
}

std::vector<float> ClipModel::text_features(const TokenBatch& tokens, TowerTrace* trace) const {
  ThreadPool& pool = *pool_;
  std::vector<float> pooled = text_->forward(pool, tokens, trace);
  std::vector<float> out(tokens.input_ids.size() * static_cast<size_t>(dim()));
  linear(pool, pooled.data(), tokens.input_ids.size(), text_projection_, out.data());
  return out;
}

std::vector<float> ClipModel::image_features(const float* pixel_values, size_t batch,
                                             TowerTrace* trace) const {
  ThreadPool& pool = *pool_;
  std::vector<float> pooled = vision_->forward(pool, pixel_values, batch, trace);
  std::vector<float> out(batch * static_cast<size_t>(dim()));
  linear(pool, pooled.data(), batch, visual_projection_, out.data());
  return out;
}

std::vector<float> ClipModel::text_features(const std::vector<std::string>& texts) const {
  return text_features(tokenizer_->encode_batch(texts, context_length()));
}

std::vector<float> ClipModel::image_features(const std::vector<Image>& images) const {
  const ImageProcessorConfig& cfg = image_processor();
  const size_t per_image =
      3 * static_cast<size_t>(cfg.out_height()) * static_cast<size_t>(cfg.out_width());
  std::vector<float> pixels(images.size() * per_image);
  pool_->parallel_for(images.size(), [&](size_t b0, size_t b1, int) {
    for (size_t b = b0; b < b1; ++b)
      preprocess_image(images[b], cfg, pixels.data() + b * per_image);
  });
  return image_features(pixels.data(), images.size());
}

}  // namespace mmfuse
