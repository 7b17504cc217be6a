// Unicode text helpers shared by the tokenizers (CLIP BPE, BERT WordPiece).
//
// Everything here reproduces what the Hugging Face *slow* (pure-Python) tokenizers
// compute under Python 3.11, whose `unicodedata` module uses Unicode 14.0.0. The
// character data comes from utf8proc. utf8proc 2.8 ships Unicode 15.0; the code
// points assigned in 15.0 are reported as unassigned (Cn) here, as Python 3.11 sees
// them (see is_unassigned_in_python). Nothing in this file throws on odd input.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mmfuse::text {

// ---------------------------------------------------------------------------
// UTF-8

// Decodes UTF-8. Every byte that does not start a well-formed sequence (stray
// continuation bytes, overlong forms, surrogates, code points above U+10FFFF,
// truncated sequences) becomes one U+FFFD. Never throws.
std::u32string decode_utf8(std::string_view s);
// True if `s` is well-formed UTF-8.
bool is_valid_utf8(std::string_view s);
void append_utf8(std::string& out, char32_t cp);
std::string encode_utf8(std::u32string_view s);
// bytes.decode("utf-8", errors="replace") as CPython does it: each maximal
// prefix of a well-formed sequence that breaks off (and each byte that starts
// none) becomes one U+FFFD, so b"\xe2\x82A" gives "\ufffdA". Returns UTF-8.
std::string decode_utf8_replace(std::string_view s);

// ---------------------------------------------------------------------------
// Character properties (Python 3.11 / Unicode 14.0 semantics)

// Code points that utf8proc knows but Python 3.11 (Unicode 14.0) treats as
// unassigned (general category Cn).
bool is_unassigned_in_python(char32_t cp);
// unicodedata.category(ch)[0] == 'C' (Cc, Cf, Cs, Co, Cn), Unicode 14.0.
bool is_other_category(char32_t cp);
bool is_letter(char32_t cp);               // category L*
bool is_number(char32_t cp);               // category N*
// \p{L} / \p{N} of the Python `regex` module (2022.10.31) the GPT-2 pattern
// runs on: Unicode 15.0 as utf8proc has it, not Python 3.11's 14.0.
bool is_regex_letter(char32_t cp);
bool is_regex_number(char32_t cp);
bool is_nonspacing_mark(char32_t cp);      // category Mn
bool is_python_space(char32_t cp);         // Python str.isspace(): what str.split() splits on
bool is_unicode_white_space(char32_t cp);  // the White_Space property: regex `\s`

// HF tokenization_utils helpers.
bool is_hf_whitespace(char32_t cp);   // _is_whitespace: ' ', \t, \n, \r, Zs
bool is_hf_control(char32_t cp);      // _is_control: category C* except \t, \n, \r
bool is_hf_punctuation(char32_t cp);  // _is_punctuation: ASCII non-alnum symbols or P*
bool is_cjk_ideograph(char32_t cp);   // BasicTokenizer._is_chinese_char

// ---------------------------------------------------------------------------
// String transforms (Python semantics)

std::u32string nfc(std::u32string_view s);  // unicodedata.normalize("NFC", s)
std::u32string nfd(std::u32string_view s);  // unicodedata.normalize("NFD", s)
// str.lower(): full lowercase mapping (U+0130 -> "i\u0307") and the Final_Sigma
// rule for U+03A3, as CPython implements it.
std::u32string python_lower(std::u32string_view s);
// str.split() with no argument.
std::vector<std::u32string> python_split(std::u32string_view s);
std::u32string_view python_lstrip(std::u32string_view s);  // str.lstrip()
std::u32string_view python_rstrip(std::u32string_view s);  // str.rstrip()

// ---------------------------------------------------------------------------
// HF BasicTokenizer (transformers.models.bert.tokenization_bert.BasicTokenizer)

struct BasicTokenizerOptions {
  bool lower_case = true;              // do_lower_case
  std::optional<bool> strip_accents;   // None: strip when lower_case (BERT); false: keep (CLIP)
  bool split_on_punc = true;           // do_split_on_punc
  bool tokenize_chinese_chars = true;  // put spaces around CJK ideographs
  std::vector<std::u32string> never_split;  // words kept as they are (no lowercasing, no split)
};

// BasicTokenizer.tokenize(text): _clean_text (drop U+0000, U+FFFD and C*; tab,
// LF, CR and Zs -> space), spaces around CJK ideographs, NFC, whitespace split,
// per word lowercase (+ accent stripping: NFD, drop Mn) and punctuation split,
// then a final whitespace split.
std::vector<std::u32string> basic_tokenize(std::u32string_view text,
                                           const BasicTokenizerOptions& options);
// UTF-8 convenience overload. Invalid UTF-8 bytes decode to U+FFFD, which the
// clean-up drops.
std::vector<std::string> basic_tokenize(std::string_view text,
                                        const BasicTokenizerOptions& options);
// The same with the positional flags of the Python constructor.
std::vector<std::string> basic_tokenize(std::string_view text, bool lower_case,
                                        std::optional<bool> strip_accents, bool split_on_punc,
                                        bool tokenize_chinese_chars);

// ---------------------------------------------------------------------------
// HF added tokens (tokenization_utils.PreTrainedTokenizer.tokenize)

struct AddedToken {
  std::string content;  // UTF-8
  int64_t id = 0;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

struct TextChunk {
  std::u32string text;
  int added = -1;  // index of the AddedToken this chunk is, or -1 for ordinary text
};

// Splits text on added tokens exactly as the slow tokenizers do before calling
// _tokenize(): Trie.split (earliest completed match, extended to the longest
// match of the earliest overlapping start, with the same lookahead as HF), then
// the lstrip / rstrip / single_word adjustments of the neighbouring chunks.
// Empty chunks are dropped.
class AddedTokenSplitter {
 public:
  AddedTokenSplitter() = default;
  explicit AddedTokenSplitter(const std::vector<AddedToken>& tokens);
  std::vector<TextChunk> split(std::u32string_view text) const;
  bool empty() const { return nodes_.size() <= 1; }

 private:
  struct Node {
    std::unordered_map<char32_t, int32_t> next;
    int32_t token = -1;  // index into tokens_ when a token ends here
  };
  std::vector<std::u32string> trie_split(std::u32string_view text) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<std::u32string, int> by_content_;
  std::vector<Node> nodes_{Node{}};
};

}  // namespace mmfuse::text
