// `mmfuse embed`: text and image embeddings from a CLIP / Chinese-CLIP folder,
// or text embeddings from a text-only encoder (BERT) with a choice of pooling.
#include "cli/commands.h"
#include "cli/common.h"
#include "mmfuse/embedder.h"
#include "mmfuse/error.h"

namespace mmfuse::cli {

void register_embed(CLI::App& app) {
  struct Options {
    std::string model, pooling;
    std::vector<std::string> texts, images;
    bool raw = false;
    int threads = 0;
    std::string dtype = "f32";
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("embed", "Embed texts and images into the model's shared space");
  cmd->add_option("--model", opt->model, "Model folder")->required();
  cmd->add_option("--text", opt->texts, "Text to embed (repeatable)")->allow_extra_args(false);
  cmd->add_option("--image", opt->images, "Image file to embed (repeatable)")
      ->allow_extra_args(false);
  cmd->add_flag("--raw", opt->raw, "Projected features before L2 normalisation");
  cmd->add_option("--pooling", opt->pooling,
                  "Text-only encoders (BERT): cls (default), mean or pooler");
  add_threads_option(cmd, &opt->threads);
  add_dtype_option(cmd, &opt->dtype);
  cmd->callback([opt] {
    MMFUSE_CHECK(!opt->texts.empty() || !opt->images.empty(), bad_input,
                 "embed: give at least one --text or --image");
    apply_threads(opt->threads);
    EmbedderOpenOptions open_options;
    open_options.dtype = opt->dtype;
    open_options.pool = command_pool();
    auto model = Embedder::open(opt->model, open_options);
    MMFUSE_CHECK(opt->images.empty() || model->embeds_images(), bad_input,
                 "embed: " + model->name() +
                     " is a text-only encoder; --image needs a text-image model "
                     "(clip, chinese_clip)");
    MMFUSE_CHECK(opt->pooling.empty() || !model->embeds_images(), bad_input,
                 "embed: --pooling applies to text-only encoders; " + model->name() +
                     " has its own text projection");
    EmbedOptions options;
    options.normalize = !opt->raw;
    options.pooling = opt->pooling;
    const size_t dim = static_cast<size_t>(model->dim());
    Json data = Json::array();
    auto emit = [&](const std::vector<std::vector<float>>& rows, const char* type,
                    const std::vector<std::string>& inputs) {
      for (size_t i = 0; i < rows.size(); ++i)
        data.push_back({{"index", data.size()},
                        {"type", type},
                        {"input", inputs[i]},
                        {"embedding", float_array(rows[i].data(), dim)}});
    };
    if (!opt->texts.empty()) emit(model->embed_texts(opt->texts, options), "text", opt->texts);
    if (!opt->images.empty())
      emit(model->embed_image_files(opt->images, options), "image", opt->images);
    print_json({{"model", model->name()}, {"dim", dim}, {"data", data}});
  });
}

}  // namespace mmfuse::cli
