// `mmfuse classify`: zero-shot classification of an image against text labels,
// softmax over exp(logit_scale) * cosine similarity, as CLIP's paper does.
#include <algorithm>
#include <cmath>

#include "cli/commands.h"
#include "cli/common.h"
#include "models/clip.h"
#include "models/zero_shot.h"

namespace mmfuse::cli {

void register_classify(CLI::App& app) {
  struct Options {
    std::string model, image, templ = "a photo of a {}.";
    std::vector<std::string> labels;
    int threads = 0;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("classify", "Zero-shot classify an image against text labels");
  cmd->add_option("--model", opt->model, "Model folder")->required();
  cmd->add_option("--image", opt->image, "Image file")->required();
  cmd->add_option("--label", opt->labels, "Candidate label (repeatable)")->required();
  cmd->add_option("--template", opt->templ,
                  "Prompt template; {} is replaced by the label (\"{}\" = labels verbatim)")
      ->capture_default_str();
  add_threads_option(cmd, &opt->threads);
  cmd->callback([opt] {
    apply_threads(opt->threads);
    auto model = ClipModel::load(opt->model);
    Image image = decode_image_file(opt->image);
    std::vector<ZeroShotScore> scores = zero_shot_classify(*model, image, opt->labels, opt->templ);
    Json labels = Json::array();
    for (const auto& s : scores) labels.push_back({{"label", s.label}, {"score", shortest_float(s.score)}});
    print_json({{"image", opt->image}, {"labels", labels}});
  });
}

}  // namespace mmfuse::cli
