// mmfuse::Embedder (the public API) on top of the model classes: the registry
// picks the architecture from config.json. No locks here: the models are
// read-only and their pool runs one caller's loop at a time.
#include "mmfuse/embedder.h"

#include <algorithm>
#include <filesystem>

#include "core/thread_pool.h"
#include "io/model_folder.h"
#include "models/bert.h"
#include "models/clip.h"
#include "models/dual_encoder.h"
#include "models/registry.h"
#include "models/zero_shot.h"
#include "vision/image.h"

namespace mmfuse {

namespace {

// Images are decoded and embedded this many at a time to bound memory.
constexpr size_t kImageBatch = 16;

std::vector<std::vector<float>> to_rows(std::vector<float>& flat, size_t rows, size_t dim,
                                        bool normalize) {
  if (normalize) l2_normalize_rows(flat.data(), rows, dim);
  std::vector<std::vector<float>> out(rows);
  for (size_t r = 0; r < rows; ++r)
    out[r].assign(flat.begin() + static_cast<long>(r * dim),
                  flat.begin() + static_cast<long>((r + 1) * dim));
  return out;
}

// CLIP, Chinese-CLIP: texts and images in one space.
class DualEncoderEmbedder final : public Embedder {
 public:
  explicit DualEncoderEmbedder(std::unique_ptr<DualEncoder> model) : model_(std::move(model)) {}

  const std::string& name() const override { return model_->name(); }
  int dim() const override { return model_->dim(); }
  bool embeds_images() const override { return true; }
  std::string default_prompt_template() const override { return model_->default_prompt_template(); }

  std::vector<std::vector<float>> embed_texts(const std::vector<std::string>& texts,
                                              const EmbedOptions& options) override {
    MMFUSE_CHECK(options.pooling.empty(), bad_input,
                 "pooling \"" + options.pooling + "\" applies to text-only encoders; " + name() +
                     " has its own text projection");
    if (texts.empty()) return {};
    std::vector<float> f = model_->text_features(texts);
    return to_rows(f, texts.size(), static_cast<size_t>(dim()), options.normalize);
  }

  std::vector<std::vector<float>> embed_image_files(const std::vector<std::string>& paths,
                                                    const EmbedOptions& options) override {
    return embed_images(paths.size(), options,
                        [&](size_t i) { return decode_image_file(paths[i]); });
  }

  std::vector<std::vector<float>> embed_encoded_images(
      const std::vector<std::vector<uint8_t>>& encoded, const EmbedOptions& options) override {
    return embed_images(encoded.size(), options, [&](size_t i) {
      return decode_image_memory(encoded[i].data(), encoded[i].size(),
                                 "image " + std::to_string(i));
    });
  }

  std::vector<LabelScore> classify(const std::string& image_path,
                                   const std::vector<std::string>& labels,
                                   const std::string& prompt_template) override {
    Image image = decode_image_file(image_path);
    std::vector<LabelScore> out;
    for (const auto& s : zero_shot_classify(
             *model_, image, labels,
             prompt_template.empty() ? model_->default_prompt_template() : prompt_template))
      out.push_back({s.label, s.score});
    return out;
  }

 private:
  template <typename Decode>
  std::vector<std::vector<float>> embed_images(size_t count, const EmbedOptions& options,
                                               Decode&& decode) {
    MMFUSE_CHECK(options.pooling.empty(), bad_input,
                 "pooling applies to texts of text-only encoders");
    std::vector<std::vector<float>> out;
    const size_t dim = static_cast<size_t>(model_->dim());
    for (size_t first = 0; first < count; first += kImageBatch) {
      const size_t n = std::min(kImageBatch, count - first);
      std::vector<Image> images(n);
      model_->pool().parallel_for(n, [&](size_t b, size_t e, int) {
        for (size_t i = b; i < e; ++i) images[i] = decode(first + i);
      });
      std::vector<float> f = model_->image_features(images);
      for (auto& row : to_rows(f, n, dim, options.normalize)) out.push_back(std::move(row));
    }
    return out;
  }

  std::unique_ptr<DualEncoder> model_;
};

// BERT: texts only.
class TextEncoderEmbedder final : public Embedder {
 public:
  TextEncoderEmbedder(std::string model_type, std::unique_ptr<BertModel> model)
      : model_type_(std::move(model_type)), model_(std::move(model)) {}

  const std::string& name() const override { return model_->name(); }
  int dim() const override { return model_->dim(); }
  bool embeds_images() const override { return false; }

  std::vector<std::vector<float>> embed_texts(const std::vector<std::string>& texts,
                                              const EmbedOptions& options) override {
    const TextPooling pooling =
        options.pooling.empty() ? TextPooling::cls : parse_text_pooling(options.pooling);
    if (texts.empty()) return {};
    std::vector<float> f = model_->embed_texts(texts, pooling);
    return to_rows(f, texts.size(), static_cast<size_t>(dim()), options.normalize);
  }

  std::vector<std::vector<float>> embed_image_files(const std::vector<std::string>&,
                                                    const EmbedOptions&) override {
    no_images();
  }
  std::vector<std::vector<float>> embed_encoded_images(const std::vector<std::vector<uint8_t>>&,
                                                       const EmbedOptions&) override {
    no_images();
  }
  std::vector<LabelScore> classify(const std::string&, const std::vector<std::string>&,
                                   const std::string&) override {
    no_images();
  }

 private:
  [[noreturn]] void no_images() const {
    throw_error(ErrorKind::bad_input, name() + " is a text-only encoder (model_type \"" +
                                          model_type_ + "\"): it cannot embed or classify images");
  }

  std::string model_type_;
  std::unique_ptr<BertModel> model_;
};

}  // namespace

std::unique_ptr<Embedder> Embedder::open(const std::string& model_dir, int threads) {
  return open(model_dir, std::make_shared<ThreadPool>(threads));
}

std::unique_ptr<Embedder> Embedder::open(const std::string& model_dir,
                                         std::shared_ptr<ThreadPool> pool) {
  MMFUSE_CHECK(pool != nullptr, bad_input, model_dir + ": no thread pool given");
  EmbedderOpenOptions options;
  options.pool = std::move(pool);
  return open(model_dir, options);
}

std::unique_ptr<Embedder> Embedder::open(const std::string& model_dir,
                                         const EmbedderOpenOptions& options) {
  const Precision precision = parse_precision(options.dtype, "dtype");
  std::shared_ptr<ThreadPool> pool =
      options.pool ? options.pool : std::make_shared<ThreadPool>(options.threads);
  const Architecture& a = architecture_with(model_dir, Capability::embed_text, "embed texts");
  if (a.open_dual_encoder)
    return std::make_unique<DualEncoderEmbedder>(
        a.open_dual_encoder(model_dir, std::move(pool), precision));
  MMFUSE_ASSERT(a.open_text_encoder != nullptr);
  return std::make_unique<TextEncoderEmbedder>(
      a.model_type, a.open_text_encoder(model_dir, std::move(pool), precision));
}

}  // namespace mmfuse
