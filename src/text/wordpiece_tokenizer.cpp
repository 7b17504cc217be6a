#include "text/wordpiece_tokenizer.h"

#include <algorithm>
#include <limits>
#include <unordered_map>

#include "mmfuse/error.h"
#include "text/tokenizer_files.h"
#include "text/unicode_text.h"

namespace mmfuse {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// vocab.txt as HF load_vocab reads it: text mode (universal newlines: "\r\n" and
// "\r" end lines too), one token per line with the newline stripped, id = line
// number; a token listed twice keeps its last id.
std::unordered_map<std::string, int64_t> load_vocab(const fs::path& path, size_t* lines) {
  const std::string raw = text::read_required_text_file(path);
  MMFUSE_CHECK(text::is_valid_utf8(raw), bad_input, path.string() + ": not valid UTF-8");
  std::unordered_map<std::string, int64_t> vocab;
  std::string line;
  int64_t index = 0;
  auto end_line = [&] {
    vocab[line] = index++;
    line.clear();
  };
  for (size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c == '\n') {
      end_line();
    } else if (c == '\r') {
      if (i + 1 < raw.size() && raw[i + 1] == '\n') ++i;
      end_line();
    } else {
      line.push_back(c);
    }
  }
  if (!line.empty()) end_line();
  MMFUSE_CHECK(index > 0, bad_input, path.string() + ": empty vocabulary");
  *lines = static_cast<size_t>(index);
  return vocab;
}

}  // namespace

struct WordPieceTokenizer::Impl {
  std::unordered_map<std::string, int64_t> vocab;
  text::TokenizerSpecials specials;
  text::AddedTokenSplitter splitter;
  std::vector<std::u32string> lower_keep;         // strings HF's lowercase pre-pass leaves alone
  std::vector<std::u32string> basic_never_split;  // never_split + all special tokens
  std::vector<std::u32string> configured_never_split;
  std::string unk_token;
  size_t max_token_chars = 0;  // longest vocab entry, in code points

  int64_t token_to_id(const std::string& token, int64_t unk_id) const {
    const int64_t id = specials.id_of(token, vocab);
    return id >= 0 ? id : unk_id;
  }

  // HF tokenize(): re.sub("(special|...)|(.+?)", keep or .lower()): one
  // character at a time ('.' does not match "\n"), the special strings kept.
  std::u32string lower_prepass(std::u32string_view s) const {
    std::u32string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
      bool kept = false;
      for (const std::u32string& k : lower_keep) {
        if (!k.empty() && s.compare(i, k.size(), k) == 0) {
          out += k;
          i += k.size();
          kept = true;
          break;
        }
      }
      if (kept) continue;
      if (s[i] == U'\n') {
        out.push_back(s[i]);
      } else {
        out += text::python_lower(s.substr(i, 1));
      }
      ++i;
    }
    return out;
  }

  // WordpieceTokenizer.tokenize for one whitespace-free word.
  void wordpiece(std::u32string_view word, size_t max_chars, std::vector<std::string>& out) const {
    if (word.size() > max_chars) {
      out.push_back(unk_token);
      return;
    }
    // Byte offsets of each character in the UTF-8 form, to cut substrings cheaply.
    const std::string utf8 = text::encode_utf8(word);
    std::vector<size_t> offset(word.size() + 1, 0);
    for (size_t i = 0; i < word.size(); ++i) {
      std::string one;
      text::append_utf8(one, word[i]);
      offset[i + 1] = offset[i] + one.size();
    }
    const size_t first_out = out.size();
    std::string candidate;
    for (size_t start = 0; start < word.size();) {
      size_t end = std::min(word.size(), start + max_token_chars);
      bool found = false;
      for (; end > start; --end) {
        candidate.assign(start > 0 ? "##" : "");
        candidate.append(utf8, offset[start], offset[end] - offset[start]);
        if (vocab.count(candidate) != 0) {
          found = true;
          break;
        }
      }
      if (!found) {  // is_bad: the whole word is [UNK]
        out.resize(first_out);
        out.push_back(unk_token);
        return;
      }
      out.push_back(candidate);
      start = end;
    }
  }
};

WordPieceTokenizer::WordPieceTokenizer() : impl_(std::make_unique<Impl>()) {}
WordPieceTokenizer::WordPieceTokenizer(WordPieceTokenizer&&) noexcept = default;
WordPieceTokenizer& WordPieceTokenizer::operator=(WordPieceTokenizer&&) noexcept = default;
WordPieceTokenizer::~WordPieceTokenizer() = default;

bool has_wordpiece_vocab(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "vocab.txt", ec);
}

WordPieceTokenizer WordPieceTokenizer::from_folder(const fs::path& dir) {
  WordPieceTokenizer tok;
  Impl& im = *tok.impl_;
  im.vocab = load_vocab(dir / "vocab.txt", &tok.vocab_size_);
  for (const auto& [token, id] : im.vocab)
    im.max_token_chars = std::max(im.max_token_chars, text::decode_utf8(token).size());

  im.specials = text::load_tokenizer_specials(dir, im.vocab,
                                              {{"unk_token", "[UNK]"},
                                               {"sep_token", "[SEP]"},
                                               {"pad_token", "[PAD]"},
                                               {"cls_token", "[CLS]"},
                                               {"mask_token", "[MASK]"}});

  // BertTokenizer constructor arguments.
  WordPieceOptions& o = tok.options_;
  if (im.specials.config) {
    const json& c = *im.specials.config;
    const std::string where = (dir / "tokenizer_config.json").string();
    auto flag = [&](const char* key, bool fallback) {
      auto it = c.find(key);
      if (it == c.end() || it->is_null()) return fallback;
      MMFUSE_CHECK(it->is_boolean(), bad_input, where + ": \"" + key + "\" must be true or false");
      return it->get<bool>();
    };
    o.do_lower_case = flag("do_lower_case", true);
    o.do_basic_tokenize = flag("do_basic_tokenize", true);
    o.tokenize_chinese_chars = flag("tokenize_chinese_chars", true);
    if (auto it = c.find("strip_accents"); it != c.end() && !it->is_null()) {
      MMFUSE_CHECK(it->is_boolean(), bad_input,
                   where + ": \"strip_accents\" must be true, false or null");
      o.strip_accents = it->get<bool>();
    }
    if (auto it = c.find("never_split"); it != c.end() && !it->is_null()) {
      MMFUSE_CHECK(it->is_array(), bad_input,
                   where + ": \"never_split\" must be a list of strings");
      for (const json& v : *it) {
        MMFUSE_CHECK(v.is_string(), bad_input,
                     where + ": \"never_split\" must be a list of strings");
        o.never_split.push_back(v.get<std::string>());
      }
    }
    if (auto it = c.find("model_max_length"); it != c.end() && it->is_number()) {
      const double v = it->get<double>();
      o.model_max_length =
          v >= 1 && v < 1e9 ? static_cast<size_t>(v) : std::numeric_limits<size_t>::max();
    }
  }

  im.unk_token = im.specials.specials.at("unk_token").content;
  tok.unk_id_ = im.specials.id_of(im.unk_token, im.vocab);
  tok.cls_id_ = im.specials.id_of(im.specials.specials.at("cls_token").content, im.vocab);
  tok.sep_id_ = im.specials.id_of(im.specials.specials.at("sep_token").content, im.vocab);
  tok.pad_id_ = im.specials.id_of(im.specials.specials.at("pad_token").content, im.vocab);
  MMFUSE_CHECK(tok.unk_id_ >= 0 && tok.cls_id_ >= 0 && tok.sep_id_ >= 0 && tok.pad_id_ >= 0,
               bad_input, dir.string() + ": [UNK]/[CLS]/[SEP]/[PAD] tokens could not be resolved");
  im.splitter = text::AddedTokenSplitter(im.specials.added);

  for (const std::string& s : im.specials.all_special_tokens) {
    im.lower_keep.push_back(text::decode_utf8(s));
    im.basic_never_split.push_back(text::decode_utf8(s));
  }
  for (const auto& t : im.specials.added)
    if (!t.special && t.normalized) im.lower_keep.push_back(text::decode_utf8(t.content));
  for (const std::string& s : o.never_split) {
    im.configured_never_split.push_back(text::decode_utf8(s));
    im.basic_never_split.push_back(text::decode_utf8(s));
  }
  return tok;
}

void WordPieceTokenizer::run(const std::string& input, std::vector<std::string>* tokens,
                             std::vector<int64_t>* ids) const {
  const Impl& im = *impl_;
  text::BasicTokenizerOptions basic;
  basic.lower_case = options_.do_lower_case;
  basic.strip_accents = options_.strip_accents;
  basic.split_on_punc = true;
  basic.tokenize_chinese_chars = options_.tokenize_chinese_chars;
  basic.never_split = im.basic_never_split;

  std::vector<std::string> pieces;
  auto emit = [&](const std::string& token) {
    if (tokens) tokens->push_back(token);
    if (ids) ids->push_back(im.token_to_id(token, unk_id_));
  };

  std::u32string decoded = text::decode_utf8(input);
  // HF's do_lower_case property reads basic_tokenizer.do_lower_case: without a
  // basic tokenizer the attribute is missing and the pre-pass is skipped.
  if (options_.do_lower_case && options_.do_basic_tokenize) decoded = im.lower_prepass(decoded);
  for (const text::TextChunk& chunk : im.splitter.split(decoded)) {
    if (chunk.added >= 0) {
      emit(im.specials.added[static_cast<size_t>(chunk.added)].content);
      continue;
    }
    pieces.clear();
    if (options_.do_basic_tokenize) {
      for (const std::u32string& word : text::basic_tokenize(chunk.text, basic)) {
        if (std::find(im.configured_never_split.begin(), im.configured_never_split.end(), word) !=
            im.configured_never_split.end()) {
          pieces.push_back(text::encode_utf8(word));
        } else {
          im.wordpiece(word, options_.max_input_chars_per_word, pieces);
        }
      }
    } else {
      for (const std::u32string& word : text::python_split(chunk.text))
        im.wordpiece(word, options_.max_input_chars_per_word, pieces);
    }
    for (const std::string& p : pieces) emit(p);
  }
}

std::vector<std::string> WordPieceTokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> tokens;
  run(text, &tokens, nullptr);
  return tokens;
}

std::vector<int64_t> WordPieceTokenizer::encode_body(const std::string& text) const {
  std::vector<int64_t> ids;
  run(text, nullptr, &ids);
  return ids;
}

std::vector<int64_t> WordPieceTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids{cls_id_};
  run(text, nullptr, &ids);
  ids.push_back(sep_id_);
  return ids;
}

TokenBatch WordPieceTokenizer::finish(std::vector<std::vector<int64_t>> a,
                                      std::vector<std::vector<int64_t>>* b, size_t max_length,
                                      bool pad) const {
  TokenBatch batch;
  for (size_t r = 0; r < a.size(); ++r) {
    std::vector<int64_t>& first = a[r];
    std::vector<int64_t>* second = b != nullptr ? &(*b)[r] : nullptr;
    const size_t specials = second != nullptr ? 3 : 2;
    const size_t total = first.size() + (second != nullptr ? second->size() : 0) + specials;
    if (total > max_length) {
      const size_t remove = total - max_length;
      if (second == nullptr) {
        // truncate_sequences: only when the text is longer than what must go.
        MMFUSE_CHECK(first.size() > remove, bad_input,
                     "max_length " + std::to_string(max_length) + " leaves no room for text " +
                         std::to_string(r) + " (" + std::to_string(first.size()) + " tokens)");
        first.resize(first.size() - remove);
      } else {
        // "longest_first": trim the longer one down to the other, then both alternately.
        MMFUSE_CHECK(
            max_length >= specials, bad_input,
            "max_length " + std::to_string(max_length) + " is too small for a sentence pair");
        const size_t la = first.size(), lb = second->size();
        const size_t first_remove = std::min(la > lb ? la - lb : lb - la, remove);
        const size_t second_remove = remove - first_remove;
        size_t cut_a = 0, cut_b = 0;
        if (la > lb) {
          cut_a = first_remove + second_remove / 2;
          cut_b = second_remove - second_remove / 2;
        } else {
          cut_a = second_remove / 2;
          cut_b = first_remove + second_remove - second_remove / 2;
        }
        first.resize(la - std::min(cut_a, la));
        second->resize(lb - std::min(cut_b, lb));
      }
    }
    std::vector<int64_t> ids{cls_id_};
    ids.insert(ids.end(), first.begin(), first.end());
    ids.push_back(sep_id_);
    std::vector<int64_t> types(ids.size(), 0);
    if (second != nullptr) {
      ids.insert(ids.end(), second->begin(), second->end());
      ids.push_back(sep_id_);
      types.resize(ids.size(), 1);
    }
    std::vector<int64_t> mask(ids.size(), 1);
    if (pad && ids.size() < max_length) {
      ids.resize(max_length, pad_id_);
      types.resize(max_length, 0);
      mask.resize(max_length, 0);
    }
    batch.input_ids.push_back(std::move(ids));
    batch.attention_mask.push_back(std::move(mask));
    batch.token_type_ids.push_back(std::move(types));
  }
  return batch;
}

TokenBatch WordPieceTokenizer::encode_batch(const std::vector<std::string>& texts,
                                            size_t max_length, bool pad) const {
  std::vector<std::vector<int64_t>> bodies;
  bodies.reserve(texts.size());
  for (const std::string& t : texts) bodies.push_back(encode_body(t));
  return finish(std::move(bodies), nullptr, max_length, pad);
}

TokenBatch WordPieceTokenizer::encode_pairs(const std::vector<std::string>& first,
                                            const std::vector<std::string>& second,
                                            size_t max_length, bool pad) const {
  MMFUSE_CHECK(first.size() == second.size(), bad_input,
               "sentence pairs: " + std::to_string(first.size()) + " first texts but " +
                   std::to_string(second.size()) + " second texts");
  std::vector<std::vector<int64_t>> a, b;
  for (const std::string& t : first) a.push_back(encode_body(t));
  for (const std::string& t : second) b.push_back(encode_body(t));
  return finish(std::move(a), &b, max_length, pad);
}

}  // namespace mmfuse
