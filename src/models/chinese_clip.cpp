// ChineseClipModel: the BERT text tower, the CLIP vision tower, their
// projections, the WordPiece tokenizer and the image processor of one folder.
#include "models/chinese_clip.h"

#include <cmath>

#include "mmfuse/error.h"

namespace mmfuse {

namespace fs = std::filesystem;

namespace {

const nlohmann::json& sub_object(const nlohmann::json& config, const char* key) {
  static const nlohmann::json empty = nlohmann::json::object();
  return config.contains(key) && config[key].is_object() ? config[key] : empty;
}
}  // namespace

ChineseClipConfig ChineseClipConfig::from_json(const nlohmann::json& config,
                                               const std::string& where) {
  MMFUSE_CHECK(config.is_object(), bad_input, where + ": config must be a JSON object");
  JsonFields top(config, where);
  const std::string type = top.string("model_type", "");
  MMFUSE_CHECK(type == "chinese_clip", unsupported,
               where + ": model_type \"" + type + "\" is not Chinese-CLIP (\"chinese_clip\")");
  ChineseClipConfig c;
  const int64_t proj = top.integer("projection_dim", c.projection_dim);
  MMFUSE_CHECK(proj > 0 && proj < (1 << 24), bad_input,
               where + ": projection_dim must be a positive integer");
  c.projection_dim = static_cast<int>(proj);
  c.text = BertConfig::from_json(sub_object(config, "text_config"), where + " text_config");
  c.vision =
      ClipVisionConfig::from_json(sub_object(config, "vision_config"), where + " vision_config");
  return c;
}

std::unique_ptr<ChineseClipModel> ChineseClipModel::load(const fs::path& dir,
                                                         std::shared_ptr<ThreadPool> pool,
                                                         Precision precision) {
  MMFUSE_CHECK(fs::is_directory(dir), not_found, dir.string() + ": model folder not found");
  std::unique_ptr<ChineseClipModel> m(new ChineseClipModel());
  m->pool_ = pool_or_own(std::move(pool));
  m->dir_ = dir;
  m->name_ = model_folder_name(dir);
  const fs::path config_path = dir / "config.json";
  m->config_ = ChineseClipConfig::from_json(read_json_file(config_path), config_path.string());
  m->store_ = WeightStore::open_folder(dir);
  WeightStore& store = *m->store_;
  // Both towers' encoder layers in `precision`; the patch embedding (a conv on
  // raw pixels) and the projections stay float32.
  store.set_linear_precision(precision);
  store.enable_packed_cache();  // a second load maps the packed layers (io/packed_weight_cache.h)
  // The packed cache's checksums are verified over the pool's threads
  // while one of them reads the tokenizer.
  store.verify_packed_cache(*m->pool_, [&] {
    m->tokenizer_ = std::make_unique<WordPieceTokenizer>(WordPieceTokenizer::from_folder(dir));
  });
  // ChineseCLIPModel builds its text model without the pooler.
  m->text_ =
      std::make_unique<BertEncoder>(store, m->config_.text, "text_model.", /*with_pooler=*/false);
  m->vision_ = std::make_unique<ClipVisionTower>(store, m->config_.vision, "vision_model");
  m->text_projection_ = load_linear_exact(store, "text_projection", m->config_.text.hidden_size,
                                    m->config_.projection_dim, false);
  m->visual_projection_ = load_linear_exact(store, "visual_projection", m->config_.vision.hidden_size,
                                      m->config_.projection_dim, false);
  m->logit_scale_ = std::exp(*store.f32("logit_scale", {}));
  MMFUSE_CHECK(m->tokenizer_->vocab_size() <= static_cast<size_t>(m->config_.text.vocab_size),
               bad_input,
               (dir / "vocab.txt").string() + ": " + std::to_string(m->tokenizer_->vocab_size()) +
                   " tokens, more than text_config vocab_size " +
                   std::to_string(m->config_.text.vocab_size));
  m->image_processor_ = load_image_processor(dir, m->config_.vision.image_size);
  m->store_->save_packed_cache();
  return m;
}

const ImageProcessorConfig& ChineseClipModel::image_processor() const {
  MMFUSE_CHECK(
      image_processor_ != nullptr, not_found,
      (dir_ / "preprocessor_config.json").string() + ": missing; it is needed to embed images");
  return *image_processor_;
}

size_t ChineseClipModel::context_length() const {
  return std::min(kContextLength, static_cast<size_t>(config_.text.max_position_embeddings));
}

std::vector<float> ChineseClipModel::text_features(const TokenBatch& tokens,
                                                   TowerTrace* trace) const {
  ThreadPool& pool = *pool_;
  const size_t batch = tokens.input_ids.size();
  const size_t hidden = static_cast<size_t>(config_.text.hidden_size);
  std::vector<float> cls;
  if (trace == nullptr) {
    cls = text_->pooled(pool, tokens, TextPooling::cls);
  } else {
    const std::vector<float> x = text_->forward(pool, tokens, trace);
    cls.resize(batch * hidden);
    for (size_t b = 0, row = 0; b < batch; row += tokens.input_ids[b].size(), ++b)
      std::copy_n(x.data() + row * hidden, hidden, cls.data() + b * hidden);
  }
  std::vector<float> out(batch * static_cast<size_t>(dim()));
  if (batch > 0) linear(pool, cls.data(), batch, text_projection_, out.data());
  return out;
}

std::vector<float> ChineseClipModel::image_features(const float* pixel_values, size_t batch,
                                                    TowerTrace* trace) const {
  ThreadPool& pool = *pool_;
  std::vector<float> pooled = vision_->forward(pool, pixel_values, batch, trace);
  std::vector<float> out(batch * static_cast<size_t>(dim()));
  if (batch > 0) linear(pool, pooled.data(), batch, visual_projection_, out.data());
  return out;
}

std::vector<float> ChineseClipModel::text_features(const std::vector<std::string>& texts) const {
  // Unpadded rows: [CLS] attends to the real tokens only either way.
  return text_features(tokenize(texts, /*pad=*/false));
}

std::vector<float> ChineseClipModel::image_features(const std::vector<Image>& images) const {
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
