// `mmfuse tokenize`: the input_ids and attention_mask a model is fed for texts
// (CLIP byte-level BPE for vocab.json folders, WordPiece for vocab.txt folders).
#include <algorithm>
#include <filesystem>

#include "cli/commands.h"
#include "cli/common.h"
#include "io/model_folder.h"
#include "mmfuse/error.h"
#include "models/registry.h"
#include "text/clip_tokenizer.h"
#include "text/wordpiece_tokenizer.h"

namespace mmfuse::cli {

namespace {

// Which tokenizer a folder uses and the length texts are padded/cut to: the
// registry's entry for its config.json; a folder of tokenizer files alone
// (no config.json) is read by the vocabulary file it has.
struct TokenizerChoice {
  bool wordpiece = false;
  size_t context_length = 0;  // 0: the tokenizer's own model_max_length
};

TokenizerChoice tokenizer_choice(const std::filesystem::path& dir) {
  const auto config_path = dir / "config.json";
  if (!std::filesystem::exists(config_path)) {
    const bool wordpiece = has_wordpiece_vocab(dir);
    return {wordpiece, wordpiece ? size_t{512} : size_t{77}};
  }
  const nlohmann::json config = read_json_file(config_path);
  const Architecture& a = architecture_for(config, config_path.string());
  MMFUSE_CHECK(
      a.tokenizer == TokenizerKind::wordpiece || a.tokenizer == TokenizerKind::byte_level_bpe,
      unsupported,
      config_path.string() + ": model_type \"" + a.model_type +
          "\" has no text tokenizer to run (tokenize takes text models)");
  return {a.tokenizer == TokenizerKind::wordpiece,
          a.text_context_length(config, config_path.string())};
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
    const TokenizerChoice choice = tokenizer_choice(dir);
    if (choice.wordpiece) {
      WordPieceTokenizer tokenizer = WordPieceTokenizer::from_folder(dir);
      const size_t max_length =
          opt->max_length != 0
              ? opt->max_length
              : std::min(tokenizer.options().model_max_length, choice.context_length);
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
    const size_t max_length = opt->max_length != 0 ? opt->max_length : choice.context_length;
    ClipTokenizer tokenizer = ClipTokenizer::from_folder(dir);
    TokenBatch batch = tokenizer.encode_batch(opt->texts, max_length);
    print_json({{"input_ids", batch.input_ids}, {"attention_mask", batch.attention_mask}});
  });
}

}  // namespace mmfuse::cli
