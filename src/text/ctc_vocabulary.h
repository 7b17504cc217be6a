// The character vocabulary of a CTC model (HF Wav2Vec2CTCTokenizer: vocab.json
// plus tokenizer_config.json / special_tokens_map.json): which id is the blank
// (the pad token), which is the word delimiter, and how a transcript maps to ids.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace mmfuse {

class CtcVocabulary {
 public:
  // Reads vocab.json and, when present, tokenizer_config.json and
  // special_tokens_map.json from a model folder. Errors name the file.
  static CtcVocabulary from_folder(const std::filesystem::path& dir);
  // From tokens in id order (tests); blank "<pad>", delimiter "|".
  static CtcVocabulary from_tokens(std::vector<std::string> tokens,
                                   const std::string& blank = "<pad>",
                                   const std::string& delimiter = "|");

  size_t size() const { return tokens_.size(); }
  const std::string& token(int id) const { return tokens_.at(static_cast<size_t>(id)); }
  int blank_id() const { return blank_id_; }
  int delimiter_id() const { return delimiter_id_; }  // -1 when the vocabulary has none
  const std::string& blank_token() const { return tokens_[static_cast<size_t>(blank_id_)]; }
  bool is_special(int id) const;  // <s>, </s>, <unk>, the blank
  bool do_lower_case() const { return do_lower_case_; }
  bool clean_up_tokenization_spaces() const { return clean_up_; }

  // The id of a token string, or -1.
  int id_of(const std::string& token) const;

  // Maps a transcript to ids for forced alignment / scoring: words are split
  // on whitespace, each character is looked up as written, then upper-cased,
  // then lower-cased; characters the vocabulary lacks (punctuation) are
  // dropped. Words left empty are dropped. Word boundaries are returned as
  // the delimiter id between words when the vocabulary has one.
  struct Encoded {
    std::vector<int> ids;                               // the target sequence (no blanks)
    std::vector<std::string> words;                     // the words as written in the text
    std::vector<std::pair<size_t, size_t>> word_spans;  // ids[first, last) of each word
  };
  Encoded encode_words(const std::string& text) const;

 private:
  std::vector<std::string> tokens_;
  std::map<std::string, int> ids_;
  int blank_id_ = 0;
  int delimiter_id_ = -1;
  std::vector<int> special_;
  bool do_lower_case_ = false;
  bool clean_up_ = true;
};

// Splits UTF-8 text into code points, each as its own string.
std::vector<std::string> utf8_chars(const std::string& text);

}  // namespace mmfuse
