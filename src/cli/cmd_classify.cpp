// `mmfuse classify`: zero-shot classification of an image against text labels,
// softmax over exp(logit_scale) * cosine similarity, as CLIP's paper does
// (CLIP and Chinese-CLIP folders).
#include "cli/commands.h"
#include "cli/common.h"
#include "mmfuse/embedder.h"
#include "mmfuse/error.h"

namespace mmfuse::cli {

void register_classify(CLI::App& app) {
  struct Options {
    std::string model, image, templ;
    std::vector<std::string> labels;
    int threads = 0;
    std::string dtype = "f32";
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("classify", "Zero-shot classify an image against text labels");
  cmd->add_option("--model", opt->model, "Model folder")->required();
  cmd->add_option("--image", opt->image, "Image file")->required();
  cmd->add_option("--label", opt->labels, "Candidate label (repeatable)")
      ->required()
      ->allow_extra_args(false);
  cmd->add_option(
      "--template", opt->templ,
      "Prompt template; {} is replaced by the label (\"{}\" = labels verbatim). Default: "
      "\"a photo of a {}.\" (Chinese-CLIP: \"一张{}的照片。\")");
  add_threads_option(cmd, &opt->threads);
  add_dtype_option(cmd, &opt->dtype);
  cmd->callback([opt] {
    apply_threads(opt->threads);
    EmbedderOpenOptions open_options;
    open_options.dtype = opt->dtype;
    open_options.pool = command_pool();
    auto model = Embedder::open(opt->model, open_options);
    MMFUSE_CHECK(model->embeds_images(), bad_input,
                 "classify: " + model->name() +
                     " is a text-only encoder; classify needs a text-image model");
    Json labels = Json::array();
    for (const auto& s : model->classify(opt->image, opt->labels, opt->templ))
      labels.push_back({{"label", s.label}, {"score", shortest_float(s.score)}});
    print_json({{"image", opt->image}, {"labels", labels}});
  });
}

}  // namespace mmfuse::cli
