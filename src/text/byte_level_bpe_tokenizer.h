// GPT-2 byte-level BPE tokenizer exact to transformers 4.44's slow
// `GPT2Tokenizer` (OPT, GPT-2):
//   - added tokens (`</s>`, `<pad>`, `added_tokens_decoder`, added_tokens.json)
//     are split out of the text first (HF's Trie + lstrip/rstrip/single_word);
//     add_prefix_space puts a space in front of the whole text before that;
//   - the rest is cut by GPT-2's pattern
//     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//     (Python `regex` classes: Unicode 15.0 letters/numbers, White_Space),
//     each piece's UTF-8 bytes mapped through bytes_to_unicode and merged by
//     merges.txt rank; a token outside vocab.json becomes unk_token's id;
//   - add_bos_token (tokenizer_config.json, default false; OPT: true, with
//     `</s>` as bos_token) puts bos in front; nothing is appended;
//   - decode: PreTrainedTokenizer._decode, the tokens' characters mapped back
//     to bytes and decoded as bytes.decode("utf-8", errors="replace"), then
//     clean_up_tokenization_spaces (config; default true as in 4.44).
// merges.txt is read as GPT2Tokenizer does (`read().split("\n")[1:-1]`): line 1
// is skipped whatever it says, and so is the text after the last newline.
//
// Where 4.44 fails rather than answers, this class raises a clear error: an id
// in neither vocab.json nor the added tokens (OPT's vocab.json lacks ids
// 50261-50263; HF's decoder.get() returns None and "".join then raises
// TypeError) is bad_input, as is a piece with no id when unk_token is not in
// vocab.json either. A special token whose characters bytes_to_unicode cannot
// map back (HF: KeyError) decodes to its own UTF-8. A merges.txt line that is
// not two fields (HF: a tuple that never matches) is bad_input naming the line.
//
// Everything is read at load and const afterwards: every method may be called
// from many threads at once (no cache: merging is O(n log n) per word).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "text/generative_tokenizer.h"

namespace mmfuse {

class ByteLevelBpeTokenizer final : public GenerativeTokenizer {
 public:
  // Reads dir/vocab.json and dir/merges.txt (a missing one is not_found naming
  // it) and, when present, tokenizer_config.json / special_tokens_map.json /
  // added_tokens.json. Malformed files are bad_input naming the file and the
  // line or key.
  static std::unique_ptr<ByteLevelBpeTokenizer> load(const std::filesystem::path& dir);
  ~ByteLevelBpeTokenizer() override;

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

  // len(vocab.json) (HF `vocab_size`, without added tokens).
  size_t vocab_size() const;

  struct Impl;

 private:
  explicit ByteLevelBpeTokenizer(std::unique_ptr<const Impl> impl);
  std::unique_ptr<const Impl> impl_;
};

}  // namespace mmfuse
