// CLIP byte-level BPE tokenizer, identical to Hugging Face `CLIPTokenizer` (the slow,
// pure-Python one) when ftfy is not installed:
//   1. added tokens (bos/eos/unk/pad and `added_tokens_decoder` entries, e.g. a
//      LAION-style pad token "!") are split out of the raw text first;
//   2. every other piece goes through BasicTokenizer(do_lower_case=True,
//      strip_accents=False, do_split_on_punc=False) and is joined with spaces;
//   3. OpenAI's pre-tokenizer regex splits it, each piece is mapped byte -> unicode
//      and BPE-merged, with "</w>" on its last symbol.
// The exact rules are listed in docs/tokenizers.md.
//
// Input text is UTF-8. Invalid UTF-8 never throws: each byte that does not start a
// well-formed sequence becomes U+FFFD, which the clean-up then removes, so invalid
// bytes are ignored (what HF does with text decoded using errors="replace").
//
// All methods are const and safe to call concurrently from several threads (the
// BPE cache is guarded by a shared mutex).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "text/token_batch.h"

namespace mmfuse {

class ClipTokenizer {
 public:
  // Reads vocab.json, merges.txt, and (if present) tokenizer_config.json /
  // special_tokens_map.json / added_tokens.json from a Hugging Face model folder.
  // Throws mmfuse::Error naming the file on missing (not_found) or malformed
  // (bad_input) files.
  static ClipTokenizer from_folder(const std::filesystem::path& dir);

  // BPE token strings (and added-token strings such as "<|endoftext|>"), no bos/eos.
  std::vector<std::string> tokenize(const std::string& text) const;
  // ids with bos/eos, not truncated.
  std::vector<int64_t> encode(const std::string& text) const;
  // padding="max_length", truncation=True as HF: bos + first (max_length-2) + eos,
  // then pad_id with mask 0. Throws bad_input if max_length < 2.
  TokenBatch encode_batch(const std::vector<std::string>& texts, size_t max_length = 77) const;

  int64_t bos_id() const { return bos_id_; }
  int64_t eos_id() const { return eos_id_; }
  int64_t pad_id() const { return pad_id_; }
  // Size of vocab.json (HF `vocab_size`; added tokens outside it not counted).
  size_t vocab_size() const { return vocab_size_; }

  ClipTokenizer(ClipTokenizer&&) noexcept;
  ClipTokenizer& operator=(ClipTokenizer&&) noexcept;
  ~ClipTokenizer();

 private:
  struct Impl;
  ClipTokenizer();
  void run(const std::string& text, std::vector<std::string>* tokens,
           std::vector<int64_t>* ids) const;

  std::unique_ptr<Impl> impl_;
  int64_t bos_id_ = 49406;
  int64_t eos_id_ = 49407;
  int64_t pad_id_ = 49407;
  size_t vocab_size_ = 0;
};

}  // namespace mmfuse
