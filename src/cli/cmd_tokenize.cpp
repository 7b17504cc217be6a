// `mmfuse tokenize`: the input_ids and attention_mask a model is fed for texts
// (CLIP byte-level BPE for vocab.json folders, WordPiece for vocab.txt folders,
// the generative tokenizers: SentencePiece for tokenizer.model (Llama) /
// spiece.model (T5) folders, GPT-2 byte-level BPE for GPT2Tokenizer folders
// such as OPT's, see generative_tokenizer_files.h).
#include <algorithm>
#include <filesystem>

#include "cli/commands.h"
#include "cli/common.h"
#include "io/model_folder.h"
#include "mmfuse/error.h"
#include "models/registry.h"
#include "text/clip_tokenizer.h"
#include "text/generative_tokenizer_files.h"
#include "text/tokenizer_files.h"
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

// tokenizer(texts) of a generative model: no padding unless max_length is
// given; then truncation=True (the text's ids are cut, the special tokens
// kept) and padding="max_length" on tokenizer_config.json's padding_side.
void print_generative_batch(const std::filesystem::path& dir, const std::vector<std::string>& texts,
                            size_t max_length) {
  const std::unique_ptr<GenerativeTokenizer> tokenizer = load_generative_tokenizer(dir);
  std::string padding_side = "right";
  if (const auto config = text::read_optional_json_object(dir / "tokenizer_config.json")) {
    auto it = config->find("padding_side");
    if (it != config->end() && it->is_string()) padding_side = it->get<std::string>();
  }
  Json ids_out = Json::array(), mask_out = Json::array();
  for (const std::string& text : texts) {
    std::vector<int32_t> ids = tokenizer->encode(text);
    if (max_length != 0) {
      const std::vector<int32_t> plain = tokenizer->encode(text, false);
      const size_t specials = ids.size() - std::min(ids.size(), plain.size());
      MMFUSE_CHECK(max_length >= specials, bad_input,
                   "--max-length " + std::to_string(max_length) + " leaves no room for the " +
                       std::to_string(specials) + " special tokens");
      if (ids.size() > max_length) {
        // Where the text's ids sit between the special tokens.
        size_t offset = 0;
        while (offset < specials && !std::equal(plain.begin(), plain.end(),
                                                ids.begin() + static_cast<ptrdiff_t>(offset)))
          ++offset;
        std::vector<int32_t> cut(ids.begin(), ids.begin() + static_cast<ptrdiff_t>(offset));
        cut.insert(cut.end(), plain.begin(),
                   plain.begin() + static_cast<ptrdiff_t>(max_length - specials));
        cut.insert(cut.end(), ids.begin() + static_cast<ptrdiff_t>(offset + plain.size()),
                   ids.end());
        ids = std::move(cut);
      }
    }
    std::vector<int32_t> mask(ids.size(), 1);
    if (max_length != 0 && ids.size() < max_length) {
      MMFUSE_CHECK(tokenizer->pad_id() >= 0, bad_input,
                   dir.string() + ": the tokenizer has no pad token to pad to --max-length");
      const size_t n = max_length - ids.size();
      const auto at_ids = padding_side == "left" ? ids.begin() : ids.end();
      ids.insert(at_ids, n, tokenizer->pad_id());
      const auto at_mask = padding_side == "left" ? mask.begin() : mask.end();
      mask.insert(at_mask, n, 0);
    }
    ids_out.push_back(ids);
    mask_out.push_back(mask);
  }
  print_json({{"input_ids", ids_out}, {"attention_mask", mask_out}});
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
                  "Pad/truncate to this many tokens (default: the model's context length; "
                  "generative (SentencePiece, GPT-2 BPE) models: no padding)");
  cmd->callback([opt] {
    const std::filesystem::path dir = opt->model;
    // Generative folders (llava, llama, t5, opt, blip-2) are told by their files.
    if (has_generative_tokenizer(dir)) {
      MMFUSE_CHECK(opt->pairs.empty(), bad_input,
                   "tokenize: --text-pair needs a WordPiece (vocab.txt) model");
      print_generative_batch(dir, opt->texts, opt->max_length);
      return;
    }
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
