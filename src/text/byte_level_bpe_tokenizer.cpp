// GPT-2 byte-level BPE as transformers 4.44's slow GPT2Tokenizer (see
// byte_level_bpe_tokenizer.h for the rules).
#include "text/byte_level_bpe_tokenizer.h"

#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "mmfuse/error.h"
#include "text/byte_pair_merges.h"
#include "text/tokenizer_files.h"
#include "text/unicode_text.h"

namespace mmfuse {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kEndOfText = "<|endoftext|>";

// vocab.json as json.load + the two dicts GPT2Tokenizer builds from it: the
// keys in file order (a repeated key keeps its first place and its last id, as
// a Python dict does), so that the id -> token map keeps the last token of a
// repeated id like `{v: k for k, v in encoder.items()}`.
struct VocabFile {
  std::unordered_map<std::string, int64_t> encoder;
  std::vector<std::string> order;
};

VocabFile read_vocab(const fs::path& path) {
  const std::string content = text::read_required_text_file(path);
  VocabFile vocab;
  std::string key;
  bool top_is_object = false;
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) -> bool {
    if (depth == 0) {
      if (event == json::parse_event_t::object_start) top_is_object = true;
      return true;
    }
    if (depth == 1 && event == json::parse_event_t::key) {
      key = parsed.get<std::string>();
      return true;
    }
    if (depth == 1 && event == json::parse_event_t::value) {
      MMFUSE_CHECK(parsed.is_number_integer(), bad_input,
                   path.string() + ": the id of \"" + key + "\" is not an integer");
      const auto id = parsed.get<int64_t>();
      MMFUSE_CHECK(id >= 0 && id < std::numeric_limits<int32_t>::max(), bad_input,
                   path.string() + ": the id of \"" + key + "\" is out of range");
      if (vocab.encoder.insert_or_assign(key, id).second) vocab.order.push_back(key);
      return false;  // nothing is kept in the parsed tree
    }
    throw_error(ErrorKind::bad_input, path.string() + ": the id of \"" + key +
                                          "\" is not an integer (a nested object or array)");
  };
  try {
    const json discarded = json::parse(content, callback);
  } catch (const json::exception& e) {
    throw_error(ErrorKind::bad_input, "malformed JSON in " + path.string() + ": " + e.what());
  }
  MMFUSE_CHECK(top_is_object, bad_input, path.string() + ": expected a JSON object");
  MMFUSE_CHECK(!vocab.encoder.empty(), bad_input, path.string() + ": empty vocabulary");
  return vocab;
}

// merges.txt as `read().split("\n")[1:-1]`, each line split on whitespace.
// Lines with no fields are kept (they hold a rank and never match); a line with
// one or three fields is corrupt.
std::vector<std::pair<std::string, std::string>> read_merges(const fs::path& path) {
  const std::string content = text::read_required_text_file(path);
  MMFUSE_CHECK(text::is_valid_utf8(content), bad_input, path.string() + ": not valid UTF-8");
  std::vector<std::pair<std::string, std::string>> merges;
  size_t line_start = 0;
  size_t line_no = 0;
  while (true) {
    const size_t nl = content.find('\n', line_start);
    if (nl == std::string::npos) break;  // the text after the last '\n' is dropped
    ++line_no;
    if (line_no > 1) {
      const std::u32string line =
          text::decode_utf8(std::string_view(content).substr(line_start, nl - line_start));
      const std::vector<std::u32string> fields = text::python_split(line);
      MMFUSE_CHECK(fields.empty() || fields.size() == 2, bad_input,
                   path.string() + ": line " + std::to_string(line_no) + " has " +
                       std::to_string(fields.size()) + " fields, a merge needs 2");
      if (fields.empty())
        merges.emplace_back();
      else
        merges.emplace_back(text::encode_utf8(fields[0]), text::encode_utf8(fields[1]));
    }
    line_start = nl + 1;
  }
  MMFUSE_CHECK(merges.size() < static_cast<size_t>(std::numeric_limits<int32_t>::max()), bad_input,
               path.string() + ": too many merges");
  return merges;
}

// GPT-2's pre-tokenizer pattern with `regex` findall semantics: at each position
// the first alternative that matches wins. Every character is a letter, a
// number, whitespace or "other", so every position starts a match.
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
enum class CharClass { letter, number, space, other };

CharClass classify(char32_t c) {
  if (text::is_regex_letter(c)) return CharClass::letter;
  if (text::is_regex_number(c)) return CharClass::number;
  if (text::is_unicode_white_space(c)) return CharClass::space;
  return CharClass::other;
}

size_t contraction_length(std::u32string_view s, size_t i) {
  if (s[i] != U'\'' || i + 1 >= s.size()) return 0;
  const char32_t a = s[i + 1];
  if (a == U's' || a == U't' || a == U'm' || a == U'd') return 2;
  if (i + 2 >= s.size()) return 0;
  const char32_t b = s[i + 2];
  if ((a == U'r' && b == U'e') || (a == U'v' && b == U'e') || (a == U'l' && b == U'l')) return 3;
  return 0;
}

std::vector<std::u32string_view> pre_tokenize(std::u32string_view s) {
  std::vector<std::u32string_view> pieces;
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    size_t len = contraction_length(s, i);
    if (len == 0) {
      const CharClass c = classify(s[i]);
      // ` ?X+`: a space (U+0020 only) joins the run that follows it.
      size_t start = i;
      CharClass run = c;
      if (s[i] == U' ' && i + 1 < n && classify(s[i + 1]) != CharClass::space) {
        start = i + 1;
        run = classify(s[i + 1]);
      }
      size_t j = start;
      while (j < n && classify(s[j]) == run) ++j;
      len = j - i;
      if (run == CharClass::space) {
        // \s+(?!\S): the whitespace run, less its last character when text
        // follows (that one then starts the next match); \s+ for a run of one.
        if (j < n && len >= 2) --len;
      }
    }
    pieces.push_back(s.substr(i, len));
    i += len;
  }
  return pieces;
}

int32_t checked_id(int64_t id, const fs::path& dir, const std::string& token) {
  MMFUSE_CHECK(id >= 0 && id < std::numeric_limits<int32_t>::max(), bad_input,
               dir.string() + ": token \"" + token + "\" has an id out of range");
  return static_cast<int32_t>(id);
}

}  // namespace

struct ByteLevelBpeTokenizer::Impl {
  std::unordered_map<std::string, int32_t> encoder;  // vocab.json
  std::unordered_map<int32_t, std::string> decoder;
  text::BpeMerges merges;
  std::array<int32_t, 256> byte_symbol{};  // bytes_to_unicode(b) as a BPE symbol
  std::vector<int32_t> symbol_ids;         // convert_tokens_to_ids per symbol; -1: none

  bool add_prefix_space = false;
  bool add_bos = false;
  bool clean_up = true;
  bool split_special_tokens = false;

  std::unordered_map<std::string, int32_t> added_encoder;
  std::unordered_map<int32_t, std::string> added_decoder;
  text::AddedTokenSplitter splitter;
  std::unordered_set<int32_t> special_ids;
  std::unordered_set<std::string> separate_tokens;  // _decode's legacy_added_tokens
  std::unordered_map<std::string, std::string> special_attrs;
  int32_t bos = -1, eos = -1, pad = -1, unk = -1;
  int32_t unk_vocab_id = -1;  // encoder.get(unk_token): the fallback of _convert_token_to_id
  size_t total_size = 0;

  // convert_tokens_to_ids for one token: added tokens, vocab.json, then unk.
  int32_t convert_token(const std::string& token) const {
    if (auto it = added_encoder.find(token); it != added_encoder.end()) return it->second;
    if (auto it = encoder.find(token); it != encoder.end()) return it->second;
    return unk_vocab_id;
  }

  std::string id_to_token(int32_t id) const {
    if (auto it = added_decoder.find(id); it != added_decoder.end()) return it->second;
    if (auto it = decoder.find(id); it != decoder.end()) return it->second;
    throw_error(ErrorKind::bad_input, "token id " + std::to_string(id) +
                                          " is in neither vocab.json nor the added tokens");
  }

  // tokenize(text) with tokens as strings and/or ids.
  void run(const std::string& input, std::vector<std::string>* tokens,
           std::vector<int32_t>* ids) const {
    const std::u32string text = text::decode_utf8(add_prefix_space ? " " + input : input);
    std::vector<text::TextChunk> chunks;
    if (split_special_tokens)
      chunks.push_back({text, -1});
    else
      chunks = splitter.split(text);
    std::vector<int32_t> word;
    for (const text::TextChunk& chunk : chunks) {
      if (chunk.added >= 0) {
        const std::string token = text::encode_utf8(chunk.text);
        if (tokens) tokens->push_back(token);
        if (ids) ids->push_back(added_encoder.at(token));
        continue;
      }
      for (std::u32string_view piece : pre_tokenize(chunk.text)) {
        word.clear();
        for (unsigned char b : text::encode_utf8(piece)) word.push_back(byte_symbol[b]);
        merges.merge(word);
        for (int32_t sym : word) {
          if (tokens) tokens->push_back(merges.symbol(sym));
          if (ids) {
            const int32_t id = symbol_ids[static_cast<size_t>(sym)];
            MMFUSE_CHECK(id >= 0, bad_input,
                         "token \"" + merges.symbol(sym) +
                             "\" is not in vocab.json and neither is the unk_token");
            ids->push_back(id);
          }
        }
      }
    }
  }

  // GPT2Tokenizer.convert_tokens_to_string: characters back to bytes, then
  // decode("utf-8", errors="replace").
  static std::string tokens_to_string(const std::vector<std::string>& tokens) {
    std::string bytes;
    for (const std::string& token : tokens)
      for (char32_t c : text::decode_utf8(token)) {
        const int b = text::byte_of_unicode(c);
        if (b >= 0)
          bytes.push_back(static_cast<char>(b));
        else
          text::append_utf8(bytes, c);  // HF: KeyError; see the header
      }
    return text::decode_utf8_replace(bytes);
  }
};

std::unique_ptr<ByteLevelBpeTokenizer> ByteLevelBpeTokenizer::load(const fs::path& dir) {
  const fs::path vocab_path = dir / "vocab.json";
  const fs::path merges_path = dir / "merges.txt";
  const fs::path config_path = dir / "tokenizer_config.json";
  VocabFile vocab = read_vocab(vocab_path);
  const auto merge_pairs = read_merges(merges_path);
  const std::optional<json> config = text::read_optional_json_object(config_path);

  auto im = std::make_unique<Impl>();
  im->add_prefix_space = text::config_flag(config, "add_prefix_space", false, config_path);
  im->add_bos = text::config_flag(config, "add_bos_token", false, config_path);
  im->clean_up = text::config_flag(config, "clean_up_tokenization_spaces", true, config_path);
  im->split_special_tokens = text::config_flag(config, "split_special_tokens", false, config_path);

  im->encoder.reserve(vocab.encoder.size());
  for (const std::string& token : vocab.order) {
    const auto id = static_cast<int32_t>(vocab.encoder.at(token));
    im->encoder.emplace(token, id);
    im->decoder[id] = token;
  }

  // BPE symbols and merge ranks.
  const auto& byte_chars = text::byte_to_unicode();
  for (size_t b = 0; b < 256; ++b) {
    std::string s;
    text::append_utf8(s, byte_chars[b]);
    im->byte_symbol[b] = im->merges.intern(s);
  }
  for (size_t r = 0; r < merge_pairs.size(); ++r)
    im->merges.add(merge_pairs[r].first, merge_pairs[r].second, static_cast<int32_t>(r));

  // Special and added tokens (GPT2Tokenizer.__init__ defaults; pad has none).
  text::TokenizerSpecials specials = text::load_tokenizer_specials(
      dir, vocab.encoder,
      {{"unk_token", kEndOfText}, {"bos_token", kEndOfText}, {"eos_token", kEndOfText}});
  for (const text::AddedToken& t : specials.added) {
    const int32_t id = checked_id(t.id, dir, t.content);
    im->added_encoder[t.content] = id;
    im->added_decoder[id] = t.content;
  }
  im->splitter = text::AddedTokenSplitter(specials.added);
  std::unordered_set<std::string> all_names;
  for (const auto& [token, id] : im->encoder) all_names.insert(token);
  for (const auto& [content, id] : im->added_encoder) all_names.insert(content);
  im->total_size = all_names.size();

  for (const auto& [attr, token] : specials.specials) im->special_attrs[attr] = token.content;
  if (auto it = im->special_attrs.find("unk_token"); it != im->special_attrs.end())
    if (auto v = im->encoder.find(it->second); v != im->encoder.end()) im->unk_vocab_id = v->second;
  auto special_id = [&](const char* attr) {
    auto it = im->special_attrs.find(attr);
    return it == im->special_attrs.end() ? -1 : im->convert_token(it->second);
  };
  im->bos = special_id("bos_token");
  im->eos = special_id("eos_token");
  im->pad = special_id("pad_token");
  im->unk = special_id("unk_token");
  MMFUSE_CHECK(!im->add_bos || im->bos >= 0, bad_input,
               config_path.string() + ": add_bos_token is set but bos_token has no id");

  std::unordered_set<std::string> special_tokens(specials.all_special_tokens.begin(),
                                                 specials.all_special_tokens.end());
  for (const std::string& t : specials.all_special_tokens) {
    const int32_t id = im->convert_token(t);
    if (id >= 0) im->special_ids.insert(id);
  }
  for (const auto& [content, id] : im->added_encoder)
    if (special_tokens.count(content) == 0) im->separate_tokens.insert(content);
  for (const std::string& t : specials.additional_special_tokens)
    if (im->convert_token(t) >= static_cast<int64_t>(im->encoder.size()))
      im->separate_tokens.insert(t);

  im->symbol_ids.reserve(im->merges.symbol_count());
  for (size_t s = 0; s < im->merges.symbol_count(); ++s)
    im->symbol_ids.push_back(im->convert_token(im->merges.symbol(static_cast<int32_t>(s))));
  return std::unique_ptr<ByteLevelBpeTokenizer>(new ByteLevelBpeTokenizer(std::move(im)));
}

ByteLevelBpeTokenizer::ByteLevelBpeTokenizer(std::unique_ptr<const Impl> impl)
    : impl_(std::move(impl)) {}
ByteLevelBpeTokenizer::~ByteLevelBpeTokenizer() = default;

std::vector<std::string> ByteLevelBpeTokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> tokens;
  impl_->run(text, &tokens, nullptr);
  return tokens;
}

std::vector<int32_t> ByteLevelBpeTokenizer::encode(const std::string& text,
                                                   bool add_special_tokens) const {
  std::vector<int32_t> ids;
  if (add_special_tokens && impl_->add_bos) ids.push_back(impl_->bos);
  impl_->run(text, nullptr, &ids);
  return ids;
}

std::string ByteLevelBpeTokenizer::decode(const std::vector<int32_t>& ids,
                                          bool skip_special_tokens) const {
  const Impl& im = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids)
    if (!(skip_special_tokens && im.special_ids.count(id) != 0))
      tokens.push_back(im.id_to_token(id));
  std::string text = text::join_decoded_tokens(
      std::move(tokens), im.separate_tokens,
      [](std::vector<std::string> run) { return Impl::tokens_to_string(run); });
  return im.clean_up ? text::clean_up_tokenization(std::move(text)) : text;
}

std::string ByteLevelBpeTokenizer::id_to_token(int32_t id) const {
  return impl_->id_to_token(id);
}

int32_t ByteLevelBpeTokenizer::token_to_id(const std::string& token) const {
  const Impl& im = *impl_;
  if (auto it = im.added_encoder.find(token); it != im.added_encoder.end()) return it->second;
  if (auto it = im.encoder.find(token); it != im.encoder.end()) return it->second;
  return -1;
}

size_t ByteLevelBpeTokenizer::size() const {
  return impl_->total_size;
}
bool ByteLevelBpeTokenizer::is_special(int32_t id) const {
  return impl_->special_ids.count(id) != 0;
}
int32_t ByteLevelBpeTokenizer::bos_id() const {
  return impl_->bos;
}
int32_t ByteLevelBpeTokenizer::eos_id() const {
  return impl_->eos;
}
int32_t ByteLevelBpeTokenizer::pad_id() const {
  return impl_->pad;
}
int32_t ByteLevelBpeTokenizer::unk_id() const {
  return impl_->unk;
}

std::string ByteLevelBpeTokenizer::special_token(const std::string& attribute) const {
  auto it = impl_->special_attrs.find(attribute);
  return it == impl_->special_attrs.end() ? std::string() : it->second;
}

size_t ByteLevelBpeTokenizer::vocab_size() const {
  return impl_->encoder.size();
}

}  // namespace mmfuse
