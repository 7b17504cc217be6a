// `mmfuse tokenize`: the input_ids and attention_mask a model is fed for texts.
#include <filesystem>

#include "cli/commands.h"
#include "cli/common.h"
#include "io/model_folder.h"
#include "text/clip_tokenizer.h"

namespace mmfuse::cli {

void register_tokenize(CLI::App& app) {
  struct Options {
    std::string model;
    std::vector<std::string> texts;
    size_t max_length = 0;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("tokenize", "Tokenise texts as the model's tokenizer does");
  cmd->add_option("--model", opt->model, "Model folder")->required();
  cmd->add_option("--text", opt->texts, "Text to tokenise (repeatable)")->required();
  cmd->add_option("--max-length", opt->max_length,
                  "Pad/truncate to this many tokens (default: the model's context length)");
  cmd->callback([opt] {
    const std::filesystem::path dir = opt->model;
    size_t max_length = opt->max_length;
    if (max_length == 0) {
      max_length = 77;
      const auto config_path = dir / "config.json";
      if (std::filesystem::exists(config_path)) {
        nlohmann::json config = read_json_file(config_path);
        if (config.contains("text_config") && config["text_config"].is_object())
          max_length = static_cast<size_t>(
              JsonFields(config["text_config"], config_path.string() + " text_config")
                  .integer("max_position_embeddings", 77));
      }
    }
    ClipTokenizer tokenizer = ClipTokenizer::from_folder(dir);
    TokenBatch batch = tokenizer.encode_batch(opt->texts, max_length);
    print_json({{"input_ids", batch.input_ids}, {"attention_mask", batch.attention_mask}});
  });
}

}  // namespace mmfuse::cli
