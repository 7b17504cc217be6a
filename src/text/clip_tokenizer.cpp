#include "text/clip_tokenizer.h"

#include <algorithm>
#include <array>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string_view>
#include <utility>

#include "mmfuse/error.h"
#include "text/byte_pair_merges.h"
#include "text/tokenizer_files.h"
#include "text/unicode_text.h"

namespace mmfuse {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr std::string_view kStartOfText = "<|startoftext|>";
constexpr std::string_view kEndOfText = "<|endoftext|>";
// HF reads merges.txt lines [1, 49152 - 256 - 2 + 1): at most 48,894 merges.
constexpr size_t kMaxMerges = 49152 - 256 - 2;
// The BPE cache is dropped when it grows past this many words; longer words are
// not cached.
constexpr size_t kMaxCacheEntries = 1 << 17;
constexpr size_t kMaxCachedWordBytes = 256;

// vocab.json ({token: id}) read with nlohmann's SAX parser straight into the
// map: building the DOM first took half of the tokenizer's load time. Same
// outcome as json::parse + items(): a repeated token keeps its last id, a
// syntax error is reported before a value of the wrong type, and of several
// tokens with non-integer ids the first in sorted order is named.
class VocabReader {
 public:
  using Json = nlohmann::json;
  explicit VocabReader(std::unordered_map<std::string, int64_t>& vocab) : vocab_(vocab) {}

  void read(const fs::path& path, const std::string& content) {
    vocab_.reserve(content.size() / 16 + 16);  // ~17 bytes per entry in CLIP's files
    Json::sax_parse(content, this);
    if (!syntax_error_.empty())
      throw_error(ErrorKind::bad_input, "malformed JSON in " + path.string() + ": " + syntax_error_);
    MMFUSE_CHECK(top_is_object_, bad_input, path.string() + ": expected a JSON object");
    if (!bad_.empty())
      throw_error(ErrorKind::bad_input, path.string() + ": the id of \"" + *bad_.begin() +
                                            "\" is not an integer");
  }

  // The SAX interface (nlohmann::json_sax).
  bool null() { return other_value(); }
  bool boolean(bool) { return other_value(); }
  bool number_integer(Json::number_integer_t v) { return id(v); }
  bool number_unsigned(Json::number_unsigned_t v) { return id(static_cast<int64_t>(v)); }
  bool number_float(Json::number_float_t, const Json::string_t&) { return other_value(); }
  bool string(Json::string_t&) { return other_value(); }
  bool binary(Json::binary_t&) { return other_value(); }
  bool start_object(std::size_t) {
    if (depth_ == 0) top_is_object_ = true;
    other_value();
    ++depth_;
    return true;
  }
  bool end_object() {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) {
    other_value();
    ++depth_;
    return true;
  }
  bool end_array() {
    --depth_;
    return true;
  }
  bool key(Json::string_t& k) {
    if (depth_ == 1) key_ = std::move(k);
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
    syntax_error_ = e.what();
    return false;
  }

 private:
  bool at_entry() const { return depth_ == 1 && top_is_object_; }
  bool id(int64_t v) {
    if (!at_entry()) return true;
    if (!bad_.empty()) bad_.erase(key_);
    vocab_.insert_or_assign(key_, v);
    return true;
  }
  bool other_value() {
    if (!at_entry()) return true;
    vocab_.erase(key_);
    bad_.insert(key_);
    return true;
  }

  std::unordered_map<std::string, int64_t>& vocab_;
  std::string key_;
  std::set<std::string> bad_;  // tokens whose (last) id is not an integer
  std::string syntax_error_;
  int depth_ = 0;
  bool top_is_object_ = false;
};

// Case-insensitive comparison of one code point with one ASCII pattern character,
// as the `regex` module's IGNORECASE does it (simple case folding: 's' also
// matches U+017F LATIN SMALL LETTER LONG S).
bool fold_equals(char32_t c, char p) {
  const auto pc = static_cast<char32_t>(static_cast<unsigned char>(p));
  if (c == pc) return true;
  if (p >= 'a' && p <= 'z') return c == pc - 32 || (p == 's' && c == 0x17F);
  return false;
}

size_t match_literal_ci(std::u32string_view s, size_t i, std::string_view pattern) {
  if (s.size() - i < pattern.size()) return 0;
  for (size_t k = 0; k < pattern.size(); ++k)
    if (!fold_equals(s[i + k], pattern[k])) return 0;
  return pattern.size();
}

// Characters matched by no alternative of the pattern: whitespace, and U+0345
// COMBINING GREEK YPOGEGRAMMENI, which IGNORECASE excludes from
// [^\s\p{L}\p{N}] because it case-folds to the letter U+03B9.
bool is_skipped(char32_t c) {
  return text::is_unicode_white_space(c) || c == 0x345;
}

// OpenAI's pre-tokenizer, matched with Python `regex` and re.IGNORECASE:
//   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// findall semantics: at each position the first alternative that matches wins;
// positions where nothing matches are skipped.
std::vector<std::u32string_view> pre_tokenize(std::u32string_view s) {
  static constexpr std::string_view kContractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
  std::vector<std::u32string_view> pieces;
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const char32_t c = s[i];
    size_t len = 0;
    if (c == U'<') {
      len = match_literal_ci(s, i, kStartOfText);
      if (len == 0) len = match_literal_ci(s, i, kEndOfText);
    } else if (c == U'\'') {
      for (std::string_view contraction : kContractions) {
        len = match_literal_ci(s, i, contraction);
        if (len != 0) break;
      }
    }
    if (len == 0) {
      if (text::is_letter(c)) {
        size_t j = i + 1;
        while (j < n && text::is_letter(s[j])) ++j;
        len = j - i;
      } else if (text::is_number(c)) {
        len = 1;
      } else if (!is_skipped(c)) {
        size_t j = i + 1;
        while (j < n && !is_skipped(s[j]) && !text::is_letter(s[j]) && !text::is_number(s[j])) ++j;
        len = j - i;
      }
    }
    if (len == 0) {
      ++i;
      continue;
    }
    pieces.push_back(s.substr(i, len));
    i += len;
  }
  return pieces;
}

}  // namespace

struct ClipTokenizer::Impl {
  std::unordered_map<std::string, int64_t> vocab;
  std::vector<text::AddedToken> added;
  std::unordered_map<std::string, int64_t> added_encoder;
  text::AddedTokenSplitter splitter;
  int64_t unk_id = -1;  // vocab id of unk_token (HF _convert_token_to_id fallback)

  // BPE symbols (every string that can appear in a BPE word) and merge ranks.
  text::BpeMerges merges;
  std::vector<int64_t> symbol_output_ids;      // convert_tokens_to_ids(symbol), -1: none
  std::array<int32_t, 256> byte_symbol{};      // bytes_to_unicode(b)
  std::array<int32_t, 256> byte_end_symbol{};  // bytes_to_unicode(b) + "</w>"

  mutable std::shared_mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;

  // convert_tokens_to_ids for one token: added tokens first, then the vocab, then unk.
  int64_t token_to_id(const std::string& token) const {
    if (auto it = added_encoder.find(token); it != added_encoder.end()) return it->second;
    if (auto it = vocab.find(token); it != vocab.end()) return it->second;
    return unk_id;
  }

  std::vector<int32_t> bpe_uncached(std::string_view piece) const {
    std::vector<int32_t> word;
    word.reserve(piece.size());
    for (size_t k = 0; k < piece.size(); ++k) {
      const auto b = static_cast<unsigned char>(piece[k]);
      word.push_back(k + 1 == piece.size() ? byte_end_symbol[b] : byte_symbol[b]);
    }
    merges.merge(word);
    return word;
  }

  std::vector<int32_t> bpe(const std::string& piece) const {
    if (piece.size() > kMaxCachedWordBytes) return bpe_uncached(piece);
    {
      std::shared_lock lock(cache_mutex);
      auto it = cache.find(piece);
      if (it != cache.end()) return it->second;
    }
    std::vector<int32_t> word = bpe_uncached(piece);
    std::unique_lock lock(cache_mutex);
    if (cache.size() >= kMaxCacheEntries) cache.clear();
    cache.emplace(piece, word);
    return word;
  }
};

ClipTokenizer::ClipTokenizer() : impl_(std::make_unique<Impl>()) {}
ClipTokenizer::ClipTokenizer(ClipTokenizer&&) noexcept = default;
ClipTokenizer& ClipTokenizer::operator=(ClipTokenizer&&) noexcept = default;
ClipTokenizer::~ClipTokenizer() = default;

ClipTokenizer ClipTokenizer::from_folder(const fs::path& dir) {
  ClipTokenizer tok;
  Impl& im = *tok.impl_;

  // vocab.json: {token: id}. nlohmann accepts literal UTF-8 and \uXXXX escapes.
  const fs::path vocab_path = dir / "vocab.json";
  VocabReader(im.vocab).read(vocab_path, text::read_required_text_file(vocab_path));
  MMFUSE_CHECK(!im.vocab.empty(), bad_input, vocab_path.string() + ": empty vocabulary");
  tok.vocab_size_ = im.vocab.size();

  // merges.txt: HF takes content.strip().split("\n")[1 : 48895]: the first line
  // (#version) is skipped, and each line is split on whitespace into a pair.
  const fs::path merges_path = dir / "merges.txt";
  const std::string merges_text = text::read_required_text_file(merges_path);
  MMFUSE_CHECK(text::is_valid_utf8(merges_text), bad_input,
               merges_path.string() + ": not valid UTF-8");
  std::vector<std::pair<std::string, std::string>> merge_pairs;
  std::vector<bool> merge_is_pair;
  {
    const std::u32string all = text::decode_utf8(merges_text);
    std::u32string_view stripped = text::python_rstrip(text::python_lstrip(all));
    merge_pairs.reserve(std::min<size_t>(kMaxMerges, merges_text.size() / 8));
    merge_is_pair.reserve(merge_pairs.capacity());
    size_t line_no = 0;
    size_t pos = 0;
    while (pos <= stripped.size() && merge_pairs.size() < kMaxMerges) {
      size_t nl = stripped.find(U'\n', pos);
      if (nl == std::u32string_view::npos) nl = stripped.size();
      std::u32string_view line = stripped.substr(pos, nl - pos);
      if (line_no > 0) {
        // line.split(), without a vector of copies per line.
        std::u32string_view parts[2];
        size_t fields = 0;
        for (size_t i = 0; i < line.size();) {
          while (i < line.size() && text::is_python_space(line[i])) ++i;
          const size_t start = i;
          while (i < line.size() && !text::is_python_space(line[i])) ++i;
          if (i > start && fields++ < 2) parts[fields - 1] = line.substr(start, i - start);
        }
        if (fields == 2) {
          merge_pairs.emplace_back(text::encode_utf8(parts[0]), text::encode_utf8(parts[1]));
          merge_is_pair.push_back(true);
        } else {
          merge_pairs.emplace_back();  // keeps the rank numbering; never matches
          merge_is_pair.push_back(false);
        }
      }
      ++line_no;
      if (nl == stripped.size()) break;
      pos = nl + 1;
    }
  }

  // Special and added tokens, the way from_pretrained + __init__ resolve them
  // (CLIPTokenizer.__init__ defaults).
  text::TokenizerSpecials sp =
      text::load_tokenizer_specials(dir, im.vocab,
                                    {{"unk_token", std::string(kEndOfText)},
                                     {"bos_token", std::string(kStartOfText)},
                                     {"eos_token", std::string(kEndOfText)},
                                     {"pad_token", std::string(kEndOfText)}});
  im.added = sp.added;
  im.added_encoder = sp.added_encoder;
  im.splitter = text::AddedTokenSplitter(im.added);

  if (auto v = im.vocab.find(sp.specials["unk_token"].content); v != im.vocab.end())
    im.unk_id = v->second;
  tok.bos_id_ = im.token_to_id(sp.specials["bos_token"].content);
  tok.eos_id_ = im.token_to_id(sp.specials["eos_token"].content);
  tok.pad_id_ = im.token_to_id(sp.specials["pad_token"].content);
  MMFUSE_CHECK(tok.bos_id_ >= 0 && tok.eos_id_ >= 0 && tok.pad_id_ >= 0, bad_input,
               dir.string() + ": bos/eos/pad token not in the vocabulary");

  // BPE symbols and merge ranks.
  const std::array<char32_t, 256>& byte_chars = text::byte_to_unicode();
  im.merges.reserve(merge_pairs.size());
  for (size_t b = 0; b < 256; ++b) {
    std::string s;
    text::append_utf8(s, byte_chars[b]);
    im.byte_symbol[b] = im.merges.intern(s);
    im.byte_end_symbol[b] = im.merges.intern(s + "</w>");
  }
  for (size_t r = 0; r < merge_pairs.size(); ++r) {
    if (!merge_is_pair[r]) continue;
    const auto& [a, b] = merge_pairs[r];
    // dict(zip(merges, range(...))): a repeated pair keeps its last rank.
    im.merges.add(a, b, static_cast<int32_t>(r));
  }
  im.symbol_output_ids.reserve(im.merges.symbol_count());
  for (size_t s = 0; s < im.merges.symbol_count(); ++s)
    im.symbol_output_ids.push_back(im.token_to_id(im.merges.symbol(static_cast<int32_t>(s))));
  return tok;
}

void ClipTokenizer::run(const std::string& input, std::vector<std::string>* tokens,
                        std::vector<int64_t>* ids) const {
  const Impl& im = *impl_;
  text::BasicTokenizerOptions clean;
  clean.lower_case = true;
  clean.strip_accents = false;
  clean.split_on_punc = false;
  clean.tokenize_chinese_chars = true;

  auto emit_string = [&](const std::string& token) {
    if (tokens) tokens->push_back(token);
    if (ids) {
      const int64_t id = im.token_to_id(token);
      MMFUSE_CHECK(id >= 0, bad_input, "token \"" + token + "\" is not in the vocabulary");
      ids->push_back(id);
    }
  };

  const std::u32string decoded = text::decode_utf8(input);
  for (const text::TextChunk& chunk : im.splitter.split(decoded)) {
    if (chunk.added >= 0) {
      emit_string(im.added[static_cast<size_t>(chunk.added)].content);
      continue;
    }
    // CLIPTokenizer._tokenize without ftfy: " ".join(BasicTokenizer.tokenize(text)).
    const std::vector<std::u32string> words = text::basic_tokenize(chunk.text, clean);
    std::u32string joined;
    for (size_t w = 0; w < words.size(); ++w) {
      if (w > 0) joined.push_back(U' ');
      joined += words[w];
    }
    for (std::u32string_view piece : pre_tokenize(joined)) {
      const std::string utf8 = text::encode_utf8(piece);
      if (utf8 == kStartOfText || utf8 == kEndOfText) {  // the BPE cache's fixed entries
        emit_string(utf8);
        continue;
      }
      for (int32_t sym : im.bpe(utf8)) {
        if (tokens) tokens->push_back(im.merges.symbol(sym));
        if (ids) {
          const int64_t id = im.symbol_output_ids[static_cast<size_t>(sym)];
          MMFUSE_CHECK(id >= 0, bad_input,
                       "token \"" + im.merges.symbol(sym) +
                           "\" is not in the vocabulary and there is no unk_token");
          ids->push_back(id);
        }
      }
    }
  }
}

std::vector<std::string> ClipTokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> tokens;
  run(text, &tokens, nullptr);
  return tokens;
}

std::vector<int64_t> ClipTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids{bos_id_};
  run(text, nullptr, &ids);
  ids.push_back(eos_id_);
  return ids;
}

TokenBatch ClipTokenizer::encode_batch(const std::vector<std::string>& texts,
                                       size_t max_length) const {
  MMFUSE_CHECK(max_length >= 2, bad_input,
               "max_length must be at least 2 (bos and eos), got " + std::to_string(max_length));
  TokenBatch batch;
  batch.input_ids.reserve(texts.size());
  batch.attention_mask.reserve(texts.size());
  for (const std::string& t : texts) {
    std::vector<int64_t> body;
    run(t, nullptr, &body);
    if (body.size() > max_length - 2) body.resize(max_length - 2);
    std::vector<int64_t> row;
    row.reserve(max_length);
    row.push_back(bos_id_);
    row.insert(row.end(), body.begin(), body.end());
    row.push_back(eos_id_);
    std::vector<int64_t> mask(row.size(), 1);
    row.resize(max_length, pad_id_);
    mask.resize(max_length, 0);
    batch.input_ids.push_back(std::move(row));
    batch.attention_mask.push_back(std::move(mask));
  }
  return batch;
}

}  // namespace mmfuse
