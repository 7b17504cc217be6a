// SentencePiece tokenizers exact to transformers 4.44's slow `LlamaTokenizer`
// (tokenizer.model) and `T5Tokenizer` (spiece.model), on libsentencepiece:
//   - added tokens (`<s>`, `<image>`, `<extra_id_N>`, ...) are split out of the
//     text first (HF's Trie + lstrip/rstrip/single_word rules), the rest goes
//     through the SentencePiece model;
//   - `legacy` (tokenizer_config.json, true when absent as 4.44 warns and does):
//     false loads the model with add_dummy_prefix off, prefixes the text with
//     `▁` itself (add_prefix_space) and encodes `unk_token + chunk` dropping the
//     unk pieces, so no `▁` appears after a special token;
//   - Llama adds BOS (add_bos_token) / EOS (add_eos_token); T5 appends `</s>`
//     unless the ids already end with it;
//   - decoding follows PreTrainedTokenizer._decode: additional special tokens
//     past the vocabulary are joined with spaces around them (4.44's decode
//     always passes spaces_between_special_tokens=True; the config key of that
//     name is stored but never read), the rest through the class's
//     convert_tokens_to_string, then clean_up_tokenization_spaces (config; the
//     default is false for Llama and true for T5).
//
// Input is UTF-8; bytes that are not well-formed UTF-8 become U+FFFD.
// Everything is read at load and const afterwards: every method may be called
// from many threads at once (SentencePieceProcessor's Encode/Decode are const).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "text/generative_tokenizer.h"

namespace mmfuse {

enum class SentencePieceFlavour { llama, t5 };

class SentencePieceTokenizer final : public GenerativeTokenizer {
 public:
  // Reads dir/tokenizer.model (llama) or dir/spiece.model (t5) and, when
  // present, tokenizer_config.json / special_tokens_map.json / added_tokens.json.
  // A missing model file is not_found; a file libsentencepiece cannot load or a
  // malformed JSON file is bad_input naming the file.
  static std::unique_ptr<SentencePieceTokenizer> load(const std::filesystem::path& dir,
                                                      SentencePieceFlavour flavour);
  ~SentencePieceTokenizer() override;

  std::vector<int32_t> encode(const std::string& text,
                              bool add_special_tokens = true) const override;
  std::vector<std::string> tokenize(const std::string& text) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const override;

  std::string id_to_token(int32_t id) const override;
  int32_t token_to_id(const std::string& token) const override;
  size_t size() const override;
  bool is_special(int32_t id) const override;

  int32_t bos_id() const override;
  int32_t eos_id() const override;
  int32_t pad_id() const override;
  int32_t unk_id() const override;
  std::string special_token(const std::string& attribute) const override;

  SentencePieceFlavour flavour() const;
  bool legacy() const;
  // The SentencePiece model's own size (HF `vocab_size`, without added tokens).
  size_t vocab_size() const;

  struct Impl;

 private:
  explicit SentencePieceTokenizer(std::unique_ptr<const Impl> impl);
  std::unique_ptr<const Impl> impl_;
};

}  // namespace mmfuse
