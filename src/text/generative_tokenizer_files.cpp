// Picks a generative model folder's tokenizer by its files (see generative_tokenizer_files.h).
#include "text/generative_tokenizer_files.h"

#include <optional>

#include "mmfuse/error.h"
#include "text/byte_level_bpe_tokenizer.h"
#include "text/sentencepiece_tokenizer.h"
#include "text/tokenizer_files.h"

namespace mmfuse {

namespace {

namespace fs = std::filesystem;

bool is_file(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

// The SentencePiece flavour of the folder, if it has a SentencePiece model.
// With both files present, tokenizer_config.json's tokenizer_class decides.
std::optional<SentencePieceFlavour> sentencepiece_flavour(const fs::path& dir) {
  const bool llama = is_file(dir / "tokenizer.model");
  const bool t5 = is_file(dir / "spiece.model");
  if (llama && t5) {
    const auto config = text::read_optional_json_object(dir / "tokenizer_config.json");
    if (config) {
      auto it = config->find("tokenizer_class");
      if (it != config->end() && it->is_string() && it->get<std::string>().rfind("T5", 0) == 0)
        return SentencePieceFlavour::t5;
    }
    return SentencePieceFlavour::llama;
  }
  if (llama) return SentencePieceFlavour::llama;
  if (t5) return SentencePieceFlavour::t5;
  return std::nullopt;
}

std::string string_field(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool is_gpt2_model_type(const std::string& model_type) {
  return model_type == "opt" || model_type == "gpt2";
}

// A vocab.json folder whose tokenizer is GPT2Tokenizer (see the header).
bool is_gpt2_bpe_folder(const fs::path& dir) {
  if (!is_file(dir / "vocab.json")) return false;
  const auto tokenizer_config = text::read_optional_json_object(dir / "tokenizer_config.json");
  if (tokenizer_config && tokenizer_config->contains("tokenizer_class")) {
    const std::string cls = string_field(*tokenizer_config, "tokenizer_class");
    return cls == "GPT2Tokenizer" || cls == "GPT2TokenizerFast";
  }
  const auto config = text::read_optional_json_object(dir / "config.json");
  if (!config) return false;
  if (is_gpt2_model_type(string_field(*config, "model_type"))) return true;
  auto text_config = config->find("text_config");
  return text_config != config->end() && text_config->is_object() &&
         is_gpt2_model_type(string_field(*text_config, "model_type"));
}

}  // namespace

bool has_generative_tokenizer(const fs::path& dir) {
  return is_file(dir / "tokenizer.model") || is_file(dir / "spiece.model") ||
         is_gpt2_bpe_folder(dir);
}

std::unique_ptr<GenerativeTokenizer> load_generative_tokenizer(const fs::path& dir) {
  if (const auto flavour = sentencepiece_flavour(dir))
    return SentencePieceTokenizer::load(dir, *flavour);
  if (is_gpt2_bpe_folder(dir)) return ByteLevelBpeTokenizer::load(dir);
  // Asked for a generative tokenizer, a vocab.json folder with no class named is
  // taken as GPT-2 (a missing merges.txt is then reported by name); one that
  // names another class (CLIPTokenizer, Wav2Vec2CTCTokenizer) is not.
  if (is_file(dir / "vocab.json")) {
    const auto tokenizer_config = text::read_optional_json_object(dir / "tokenizer_config.json");
    const std::string cls =
        tokenizer_config ? string_field(*tokenizer_config, "tokenizer_class") : std::string();
    MMFUSE_CHECK(cls.empty(), unsupported,
                 (dir / "tokenizer_config.json").string() + ": tokenizer_class \"" + cls +
                     "\" is not a generative tokenizer (GPT2Tokenizer, LlamaTokenizer, "
                     "T5Tokenizer)");
    return ByteLevelBpeTokenizer::load(dir);
  }
  throw_error(ErrorKind::not_found,
              dir.string() +
                  ": no generative tokenizer (looked for tokenizer.model, spiece.model, and "
                  "vocab.json + merges.txt with tokenizer_class GPT2Tokenizer)");
}

}  // namespace mmfuse
