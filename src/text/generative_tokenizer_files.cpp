// Picks a generative model folder's tokenizer by its files (see generative_tokenizer_files.h).
#include "text/generative_tokenizer_files.h"

#include <optional>

#include "mmfuse/error.h"
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

}  // namespace

bool has_generative_tokenizer(const fs::path& dir) {
  return is_file(dir / "tokenizer.model") || is_file(dir / "spiece.model");
}

std::unique_ptr<GenerativeTokenizer> load_generative_tokenizer(const fs::path& dir) {
  if (const auto flavour = sentencepiece_flavour(dir))
    return SentencePieceTokenizer::load(dir, *flavour);
  throw_error(ErrorKind::not_found, dir.string() +
                                        ": no generative tokenizer (looked for tokenizer.model, "
                                        "spiece.model)");
}

}  // namespace mmfuse
