// `mmfuse tokenize`: the input_ids and attention_mask a model is fed for texts
// (CLIP byte-level BPE for vocab.json folders, WordPiece for vocab.txt folders).
#include <filesystem>

#include "cli/commands.h"
#include "cli/common.h"
#include "io/model_folder.h"
#include "mmfuse/error.h"
#include "text/clip_tokenizer.h"
#include "text/wordpiece_tokenizer.h"

namespace mmfuse::cli {

namespace {

// The context length the model's own embedding path uses.
size_t default_max_length(const std::filesystem::path& dir, bool wordpiece,
                          size_t model_max_length) {
  const auto config_path = dir / "config.json";
  nlohmann::json config =
      std::filesystem::exists(config_path) ? read_json_file(config_path) : nlohmann::json::object();
  if (!config.is_object()) config = nlohmann::json::object();
  const std::string type = JsonFields(config, config_path.string()).string("model_type", "");
  if (!wordpiece) {
    if (config.contains("text_config") && config["text_config"].is_object())
      return static_cast<size_t>(
          JsonFields(config["text_config"], config_path.string() + " text_config")
              .integer("max_position_embeddings", 77));
    return 77;
  }
  const nlohmann::json& text = config.contains("text_config") && config["text_config"].is_object()
                                   ? config["text_config"]
                                   : config;
  const size_t positions = static_cast<size_t>(std::max<int64_t>(
      1, JsonFields(text, config_path.string()).integer("max_position_embeddings", 512)));
  if (type == "chinese_clip")
    return std::min<size_t>(52, positions);  // Chinese-CLIP's context length
  return std::min(model_max_length, positions);
}

}  // namespace

void register_tokenize(CLI::App& app) {
  struct Options {
    std::string model;
    std::vector<std::string> texts, pairs;
    size_t max_length = 0;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("tokenize", "Tokenise texts as the model's tokenizer does");
  cmd->add_option("--model", opt->model, "Model folder")->required();
  cmd->add_option("--text", opt->texts, "Text to tokenise (repeatable)")
      ->required()
      ->allow_extra_args(false);
  cmd->add_option("--text-pair", opt->pairs,
                  "WordPiece models: second text of a sentence pair, one per --text (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--max-length", opt->max_length,
                  "Pad/truncate to this many tokens (default: the model's context length)");
  cmd->callback([opt] {
    const std::filesystem::path dir = opt->model;
    if (has_wordpiece_vocab(dir)) {
      WordPieceTokenizer tokenizer = WordPieceTokenizer::from_folder(dir);
      const size_t max_length =
          opt->max_length != 0
              ? opt->max_length
              : default_max_length(dir, true, tokenizer.options().model_max_length);
      TokenBatch batch = opt->pairs.empty()
                             ? tokenizer.encode_batch(opt->texts, max_length)
                             : tokenizer.encode_pairs(opt->texts, opt->pairs, max_length);
      print_json({{"input_ids", batch.input_ids},
                  {"attention_mask", batch.attention_mask},
                  {"token_type_ids", batch.token_type_ids}});
      return;
    }
    MMFUSE_CHECK(opt->pairs.empty(), bad_input,
                 "tokenize: --text-pair needs a WordPiece (vocab.txt) model");
    const size_t max_length =
        opt->max_length != 0 ? opt->max_length : default_max_length(dir, false, 77);
    ClipTokenizer tokenizer = ClipTokenizer::from_folder(dir);
    TokenBatch batch = tokenizer.encode_batch(opt->texts, max_length);
    print_json({{"input_ids", batch.input_ids}, {"attention_mask", batch.attention_mask}});
  });
}

}  // namespace mmfuse::cli
