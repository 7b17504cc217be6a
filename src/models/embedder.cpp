// mmfuse::Embedder (the public API) on top of the model classes: picks the
// architecture from config.json's model_type, as a loader registry would.
#include "mmfuse/embedder.h"

#include <filesystem>
#include <mutex>

#include "core/thread_pool.h"
#include "io/model_folder.h"
#include "models/clip.h"
#include "models/zero_shot.h"
#include "vision/image.h"

namespace mmfuse {

namespace {

std::vector<std::vector<float>> to_rows(std::vector<float>& flat, size_t rows, size_t dim,
                                        bool normalize) {
  if (normalize) l2_normalize_rows(flat.data(), rows, dim);
  std::vector<std::vector<float>> out(rows);
  for (size_t r = 0; r < rows; ++r)
    out[r].assign(flat.begin() + static_cast<long>(r * dim), flat.begin() + static_cast<long>((r + 1) * dim));
  return out;
}

class ClipEmbedder final : public Embedder {
 public:
  explicit ClipEmbedder(std::unique_ptr<ClipModel> model) : model_(std::move(model)) {}

  const std::string& name() const override { return model_->name(); }
  int dim() const override { return model_->dim(); }
  bool embeds_images() const override { return true; }

  std::vector<std::vector<float>> embed_texts(const std::vector<std::string>& texts,
                                              const EmbedOptions& options) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (texts.empty()) return {};
    std::vector<float> f = model_->text_features(texts);
    return to_rows(f, texts.size(), static_cast<size_t>(dim()), options.normalize);
  }

  std::vector<std::vector<float>> embed_image_files(const std::vector<std::string>& paths,
                                                    const EmbedOptions& options) override {
    std::vector<Image> images;
    for (const auto& p : paths) images.push_back(decode_image_file(p));
    return embed(images, options);
  }

  std::vector<std::vector<float>> embed_encoded_images(const std::vector<std::vector<uint8_t>>& encoded,
                                                       const EmbedOptions& options) override {
    std::vector<Image> images;
    for (size_t i = 0; i < encoded.size(); ++i)
      images.push_back(decode_image_memory(encoded[i].data(), encoded[i].size(),
                                           "image " + std::to_string(i)));
    return embed(images, options);
  }

  std::vector<LabelScore> classify(const std::string& image_path, const std::vector<std::string>& labels,
                                   const std::string& prompt_template) override {
    Image image = decode_image_file(image_path);
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<LabelScore> out;
    for (const auto& s : zero_shot_classify(*model_, image, labels, prompt_template))
      out.push_back({s.label, s.score});
    return out;
  }

 private:
  std::vector<std::vector<float>> embed(const std::vector<Image>& images, const EmbedOptions& options) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (images.empty()) return {};
    std::vector<float> f = model_->image_features(images);
    return to_rows(f, images.size(), static_cast<size_t>(dim()), options.normalize);
  }

  std::unique_ptr<ClipModel> model_;
  std::mutex mutex_;  // the default pool runs one parallel loop at a time
};

}  // namespace

std::unique_ptr<Embedder> Embedder::open(const std::string& model_dir, int threads) {
  if (threads > 0) set_default_threads(threads);
  const std::filesystem::path config_path = std::filesystem::path(model_dir) / "config.json";
  nlohmann::json config = read_json_file(config_path);
  const std::string type = JsonFields(config, config_path.string()).string("model_type", "");
  if (type == "clip") return std::make_unique<ClipEmbedder>(ClipModel::load(model_dir));
  throw_error(ErrorKind::unsupported,
              config_path.string() + ": unsupported model_type \"" + type + "\" (supported: clip)");
}

}  // namespace mmfuse
