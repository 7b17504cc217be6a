// `mmfuse caption`: one caption per image file (folders expand to their image
// files, as `index add` walks them) from a generative model folder that takes
// images (LLaVA, BLIP-2), one JSON line each as it is written.
#include <optional>

#include "cli/captioning.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "index/indexer.h"
#include "vision/image.h"

namespace mmfuse::cli {

void register_caption(CLI::App& app) {
  struct Options {
    std::string model;
    std::optional<std::string> prompt;
    CaptionOptions caption;
    std::vector<std::string> paths;
    int threads = 0;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("caption", "Write a caption for each image (LLaVA, BLIP-2)");
  cmd->add_option("--model", opt->model, "Generative model folder that takes images")->required();
  cmd->add_option("--prompt", opt->prompt,
                  "Text asked with each image (default: none for BLIP-2, \"Describe this image "
                  "in one sentence.\" for LLaVA; \"\" = the image alone)");
  cmd->add_option("--max-new-tokens", opt->caption.max_new_tokens, "Most new tokens per caption")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--num-beams", opt->caption.num_beams, "Beam search with K beams (1 = greedy)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("paths", opt->paths,
                  "Image files or folders (recursive: jpg, jpeg, png, webp, bmp)")
      ->required();
  add_threads_option(cmd, &opt->threads);
  cmd->footer(
      "Prints one JSON line per image: {\"image\", \"caption\", \"tokens\", \"ms\"}. An image "
      "that cannot be read or decoded gets {\"image\", \"error\"} instead; the others are still "
      "captioned and the exit status is 2 at the end.");
  cmd->callback([opt] {
    apply_threads(opt->threads);
    CaptionOptions options = opt->caption;
    options.prompt = opt->prompt;
    const std::vector<std::string> files = list_image_files(opt->paths);
    auto captioner = open_captioner(opt->model, options, "--model");
    size_t failed = 0;
    for (const std::string& path : files) {
      const double t0 = now_ms();
      try {
        const Caption c = captioner->caption(decode_image_file(path));
        print_json({{"image", path},
                    {"caption", c.text},
                    {"tokens", c.tokens},
                    {"ms", shortest_float(static_cast<float>(now_ms() - t0))}});
      } catch (const Error& e) {
        if (e.kind() == ErrorKind::internal) throw;
        ++failed;
        print_json({{"image", path}, {"error", e.what()}});
      }
    }
    MMFUSE_CHECK(failed == 0, bad_input,
                 std::to_string(failed) + " of " + std::to_string(files.size()) +
                     " images could not be captioned (see their \"error\" lines)");
  });
}

}  // namespace mmfuse::cli
