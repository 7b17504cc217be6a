// WordPiece tokenizer, identical to Hugging Face `BertTokenizer` (the slow,
// pure-Python one) for BERT, Chinese-BERT and Chinese-CLIP folders (vocab.txt):
//   1. with do_lower_case, every character outside the special-token strings is
//      lowercased (str.lower, one character at a time, as HF's pre-pass does);
//   2. added and special tokens ("[CLS]", "[MASK]", ...) written in the text are
//      split out first and kept whole;
//   3. the rest goes through BasicTokenizer: clean-up of control characters and
//      whitespace, spaces around CJK ideographs, NFC, lowercasing and accent
//      stripping (per do_lower_case / strip_accents), punctuation split;
//   4. greedy longest-match-first WordPiece with "##" continuations; words longer
//      than max_input_chars_per_word (100) or with no match become [UNK].
// The exact rules are listed in docs/tokenizers.md.
//
// Input text is UTF-8; invalid bytes become U+FFFD, which the clean-up removes.
// All methods are const and safe to call from several threads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "text/token_batch.h"

namespace mmfuse {

struct WordPieceOptions {  // BertTokenizer constructor arguments (tokenizer_config.json)
  bool do_lower_case = true;
  bool do_basic_tokenize = true;
  bool tokenize_chinese_chars = true;
  std::optional<bool> strip_accents;  // null: strip when lowercasing
  std::vector<std::string> never_split;
  size_t max_input_chars_per_word = 100;
  size_t model_max_length = 512;  // tokenizer_config.json model_max_length
};

class WordPieceTokenizer {
 public:
  // Reads vocab.txt (one token per line, id = line number) and, when present,
  // tokenizer_config.json / special_tokens_map.json / added_tokens.json.
  // Throws mmfuse::Error naming the file on missing (not_found) or malformed
  // (bad_input) files.
  static WordPieceTokenizer from_folder(const std::filesystem::path& dir);

  // Token strings (WordPiece pieces and added tokens), without [CLS]/[SEP].
  std::vector<std::string> tokenize(const std::string& text) const;
  // ids of tokenize(text), without [CLS]/[SEP].
  std::vector<int64_t> encode_body(const std::string& text) const;
  // [CLS] text [SEP], not truncated.
  std::vector<int64_t> encode(const std::string& text) const;

  // tok(texts, truncation=True, max_length=L, padding="max_length" if pad):
  // [CLS] A [SEP] with token_type_ids 0; A is cut to fit L. Without `pad` each
  // row keeps its own length. Throws bad_input if L is too small to hold the
  // special tokens and one token of a text that needs cutting.
  TokenBatch encode_batch(const std::vector<std::string>& texts, size_t max_length,
                          bool pad = true) const;
  // Sentence pairs: [CLS] A [SEP] B [SEP], token_type_ids 0 for [CLS] A [SEP] and
  // 1 for B [SEP], truncated "longest_first" as HF does. first.size() must equal second.size().
  TokenBatch encode_pairs(const std::vector<std::string>& first,
                          const std::vector<std::string>& second, size_t max_length,
                          bool pad = true) const;

  int64_t cls_id() const { return cls_id_; }
  int64_t sep_id() const { return sep_id_; }
  int64_t pad_id() const { return pad_id_; }
  int64_t unk_id() const { return unk_id_; }
  size_t vocab_size() const {
    return vocab_size_;
  }  // lines of vocab.txt (HF len(vocab) may be less)
  const WordPieceOptions& options() const { return options_; }

  WordPieceTokenizer(WordPieceTokenizer&&) noexcept;
  WordPieceTokenizer& operator=(WordPieceTokenizer&&) noexcept;
  ~WordPieceTokenizer();

 private:
  struct Impl;
  WordPieceTokenizer();
  void run(const std::string& text, std::vector<std::string>* tokens,
           std::vector<int64_t>* ids) const;
  TokenBatch finish(std::vector<std::vector<int64_t>> a, std::vector<std::vector<int64_t>>* b,
                    size_t max_length, bool pad) const;

  std::unique_ptr<Impl> impl_;
  WordPieceOptions options_;
  int64_t cls_id_ = 101, sep_id_ = 102, pad_id_ = 0, unk_id_ = 100;
  size_t vocab_size_ = 0;
};

// True when `dir` holds a WordPiece vocabulary (vocab.txt) rather than a BPE one.
bool has_wordpiece_vocab(const std::filesystem::path& dir);

}  // namespace mmfuse
