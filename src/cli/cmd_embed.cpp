// `mmfuse embed`: text and image embeddings from a CLIP folder.
#include "cli/commands.h"
#include "cli/common.h"
#include "core/thread_pool.h"
#include "mmfuse/error.h"
#include "models/clip.h"
#include "vision/image.h"

namespace mmfuse::cli {

namespace {
// Images are decoded and embedded this many at a time to bound memory.
constexpr size_t kImageBatch = 16;
}  // namespace

void register_embed(CLI::App& app) {
  struct Options {
    std::string model;
    std::vector<std::string> texts, images;
    bool raw = false;
    int threads = 0;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("embed", "Embed texts and images into the model's shared space");
  cmd->add_option("--model", opt->model, "Model folder")->required();
  cmd->add_option("--text", opt->texts, "Text to embed (repeatable)");
  cmd->add_option("--image", opt->images, "Image file to embed (repeatable)");
  cmd->add_flag("--raw", opt->raw, "Projected features before L2 normalisation");
  add_threads_option(cmd, &opt->threads);
  cmd->callback([opt] {
    MMFUSE_CHECK(!opt->texts.empty() || !opt->images.empty(), bad_input,
                 "embed: give at least one --text or --image");
    apply_threads(opt->threads);
    auto model = ClipModel::load(opt->model);
    const size_t dim = static_cast<size_t>(model->dim());
    Json data = Json::array();
    auto emit = [&](std::vector<float>& features, size_t count, const char* type,
                    const std::vector<std::string>& inputs, size_t first) {
      if (!opt->raw) l2_normalize_rows(features.data(), count, dim);
      for (size_t i = 0; i < count; ++i)
        data.push_back({{"index", data.size()},
                        {"type", type},
                        {"input", inputs[first + i]},
                        {"embedding", float_array(features.data() + i * dim, dim)}});
    };
    if (!opt->texts.empty()) {
      std::vector<float> f = model->text_features(opt->texts);
      emit(f, opt->texts.size(), "text", opt->texts, 0);
    }
    for (size_t first = 0; first < opt->images.size(); first += kImageBatch) {
      const size_t count = std::min(kImageBatch, opt->images.size() - first);
      std::vector<Image> images(count);
      default_pool().parallel_for(count, [&](size_t b, size_t e, int) {
        for (size_t i = b; i < e; ++i) images[i] = decode_image_file(opt->images[first + i]);
      });
      std::vector<float> f = model->image_features(images);
      emit(f, count, "image", opt->images, first);
    }
    print_json({{"model", model->name()}, {"dim", dim}, {"data", data}});
  });
}

}  // namespace mmfuse::cli
