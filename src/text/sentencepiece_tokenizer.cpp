// Llama / T5 SentencePiece tokenizers as transformers 4.44's slow classes (see
// sentencepiece_tokenizer.h for the rules).
#include "text/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include <limits>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "mmfuse/error.h"
#include "text/tokenizer_files.h"
#include "text/unicode_text.h"

namespace mmfuse {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::string_view kUnderline = "\xE2\x96\x81";  // U+2581, SentencePiece's space

// A serialized ModelProto field 3 (normalizer_spec) holding only
// add_dummy_prefix (field 3) = false. Protobuf merges repeated occurrences of an
// embedded message, so appending these bytes to a model file is exactly 4.44's
// `model.normalizer_spec.MergeFrom(NormalizerSpec(add_dummy_prefix=False))`.
constexpr char kNoDummyPrefix[] = {0x1A, 0x02, 0x18, 0x00};

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Built into a new string: GCC 12's -Wrestrict misfires on an inlined in-place
// std::string::replace with a constant pattern.
std::string replace_all(const std::string& s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  size_t start = 0, pos = 0;
  while ((pos = s.find(from, start)) != std::string::npos) {
    out.append(s, start, pos - start);
    out.append(to);
    start = pos + from.size();
  }
  out.append(s, start, std::string::npos);
  return out;
}

// str.strip(): Python whitespace on both ends.
std::string python_strip(const std::string& s) {
  const std::u32string u = text::decode_utf8(s);
  return text::encode_utf8(text::python_rstrip(text::python_lstrip(u)));
}

using text::clean_up_tokenization;
using text::config_flag;

int32_t checked_id(int64_t id, const fs::path& dir, const std::string& token) {
  MMFUSE_CHECK(id >= 0 && id < std::numeric_limits<int32_t>::max(), bad_input,
               dir.string() + ": token \"" + token + "\" has an id out of range");
  return static_cast<int32_t>(id);
}

}  // namespace

struct SentencePieceTokenizer::Impl {
  SentencePieceFlavour flavour = SentencePieceFlavour::llama;
  sentencepiece::SentencePieceProcessor sp;
  int32_t piece_count = 0;
  bool legacy = true;
  bool add_prefix_space = true;
  bool add_bos = false;
  bool add_eos = false;
  bool clean_up = false;

  std::string unk_token;        // its content: `unk_token + text` trick
  size_t unk_token_length = 0;  // len(sp.encode(unk_token))
  std::unordered_map<std::string, int32_t> added_encoder;
  std::unordered_map<int32_t, std::string> added_decoder;
  std::unordered_set<std::string> special_tokens;  // all_special_tokens
  std::unordered_set<int32_t> special_ids;         // all_special_ids
  // Tokens _decode emits as their own pieces (joined with spaces): added tokens
  // that are not special, and additional special tokens past the vocabulary.
  std::unordered_set<std::string> separate_tokens;
  std::unordered_map<std::string, std::string> special_attrs;  // "bos_token" -> "<s>"
  int32_t bos = -1, eos = -1, pad = -1, unk = -1;
  size_t total_size = 0;
  text::AddedTokenSplitter splitter;

  std::vector<std::string> sp_encode(std::string_view text) const {
    std::vector<std::string> pieces;
    const auto status = sp.Encode(text, &pieces);
    MMFUSE_CHECK(status.ok(), internal, "sentencepiece encode failed: " + status.ToString());
    return pieces;
  }

  std::string sp_decode(const std::vector<std::string>& pieces) const {
    if (pieces.empty()) return {};
    std::string out;
    const auto status = sp.Decode(pieces, &out);
    MMFUSE_CHECK(status.ok(), internal, "sentencepiece decode failed: " + status.ToString());
    return out;
  }

  // convert_tokens_to_ids: added tokens, then the model (its unk id for unknown pieces).
  int32_t convert_token(const std::string& token) const {
    if (auto it = added_encoder.find(token); it != added_encoder.end()) return it->second;
    return sp.PieceToId(token);
  }

  std::string id_to_token(int32_t id) const {
    if (auto it = added_decoder.find(id); it != added_decoder.end()) return it->second;
    MMFUSE_CHECK(id >= 0 && id < piece_count, bad_input,
                 "token id " + std::to_string(id) + " is outside the vocabulary (" +
                     std::to_string(total_size) + " tokens)");
    return sp.IdToPiece(id);
  }

  // _tokenize: one chunk of text between added tokens.
  std::vector<std::string> tokenize_chunk(const std::string& text) const {
    if (legacy || !(starts_with(text, kUnderline) || starts_with(text, " ")))
      return sp_encode(text);
    // add_dummy_prefix is off, so SentencePiece would drop a leading `▁`:
    // encode behind the unk token and cut its pieces off again.
    std::vector<std::string> pieces = sp_encode(unk_token + text);
    if (pieces.size() >= unk_token_length)
      pieces.erase(pieces.begin(), pieces.begin() + static_cast<ptrdiff_t>(unk_token_length));
    return pieces;
  }

  // LlamaTokenizer.tokenize / T5Tokenizer.tokenize (the two are the same).
  std::vector<std::string> tokenize(const std::string& input) const {
    const bool prefix_rules = !legacy && !input.empty();
    std::string text = input;
    if (prefix_rules) {
      text = replace_all(text, kUnderline, " ");
      if (add_prefix_space) text.insert(0, kUnderline);
    }
    std::vector<std::string> tokens;
    for (const text::TextChunk& chunk : splitter.split(text::decode_utf8(text))) {
      std::string piece = text::encode_utf8(chunk.text);
      if (chunk.added >= 0) {
        tokens.push_back(std::move(piece));
      } else {
        std::vector<std::string> sub = tokenize_chunk(piece);
        tokens.insert(tokens.end(), std::make_move_iterator(sub.begin()),
                      std::make_move_iterator(sub.end()));
      }
    }
    if (prefix_rules && tokens.size() > 1 && tokens[0] == kUnderline &&
        special_tokens.count(tokens[1]) != 0)
      tokens.erase(tokens.begin());
    return tokens;
  }

  std::string llama_tokens_to_string(std::vector<std::string> tokens) const {
    if (add_prefix_space && starts_with(tokens[0], kUnderline))
      tokens[0].erase(0, kUnderline.size());
    std::string out;
    std::vector<std::string> current;
    bool prev_is_special = false;
    for (size_t i = 0; i < tokens.size(); ++i) {
      const std::string& token = tokens[i];
      if (special_tokens.count(token) != 0) {
        if (!prev_is_special && i != 0 && legacy) out += ' ';
        out += sp_decode(current) + token;
        prev_is_special = true;
        current.clear();
      } else {
        if (prev_is_special && i == 1 && add_prefix_space && !starts_with(token, kUnderline))
          out += ' ';
        current.push_back(token);
        prev_is_special = false;
      }
    }
    return out + sp_decode(current);
  }

  std::string t5_tokens_to_string(std::vector<std::string> tokens) const {
    if (add_prefix_space && starts_with(tokens[0], kUnderline))
      tokens[0].erase(0, kUnderline.size());
    std::string out;
    std::vector<std::string> current;
    bool prev_is_special = false;
    for (const std::string& token : tokens) {
      if (special_tokens.count(token) != 0) {
        if (!prev_is_special) out += ' ';
        out += sp_decode(current) + token;
        prev_is_special = true;
        current.clear();
      } else {
        current.push_back(token);
        prev_is_special = false;
      }
    }
    return python_strip(out + sp_decode(current));
  }

  std::string tokens_to_string(std::vector<std::string> tokens) const {
    return flavour == SentencePieceFlavour::llama ? llama_tokens_to_string(std::move(tokens))
                                                  : t5_tokens_to_string(std::move(tokens));
  }
};

namespace {

// T5Tokenizer.__init__'s sentinels: `<extra_id_i>` at id
// piece_count - 1 + extra_ids - i, stripping spaces on both sides. The files'
// added_tokens_decoder overrides an id it lists.
void add_t5_sentinels(text::TokenizerSpecials& specials, int64_t piece_count, int64_t extra_ids,
                      const fs::path& dir) {
  const fs::path config_path = dir / "tokenizer_config.json";
  int64_t listed = 0;
  for (const std::string& t : specials.additional_special_tokens)
    if (t.find("<extra_id_") != std::string::npos) ++listed;
  MMFUSE_CHECK(listed == 0 || extra_ids == 0 || listed == extra_ids, bad_input,
               config_path.string() + ": extra_ids (" + std::to_string(extra_ids) +
                   ") does not match the " + std::to_string(listed) +
                   " <extra_id_N> additional_special_tokens");
  // No sentinels listed: T5 adds them (the layout of every published T5 vocabulary).
  const int64_t count = listed != 0 ? listed : extra_ids;
  std::unordered_set<int64_t> from_files;
  if (specials.config && specials.config->contains("added_tokens_decoder"))
    for (const auto& [key, value] : (*specials.config)["added_tokens_decoder"].items())
      from_files.insert(std::stoll(key));  // load_tokenizer_specials checked the keys
  for (int64_t i = 0; i < count; ++i) {
    const std::string content = "<extra_id_" + std::to_string(i) + ">";
    const int64_t id = piece_count - 1 + extra_ids - i;
    if (listed == 0) {
      specials.additional_special_tokens.push_back(content);
      specials.all_special_tokens.push_back(content);
    }
    if (from_files.count(id) != 0) continue;
    text::AddedToken token;
    token.content = content;
    token.id = id;
    token.lstrip = token.rstrip = true;
    token.normalized = false;
    token.special = true;
    bool replaced = false;
    for (text::AddedToken& t : specials.added)
      if (t.content == content) {
        t = token;
        replaced = true;
      }
    if (!replaced) specials.added.push_back(token);
    specials.added_encoder[content] = id;
  }
}

}  // namespace

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::load(const fs::path& dir,
                                                                     SentencePieceFlavour flavour) {
  const bool llama = flavour == SentencePieceFlavour::llama;
  const fs::path model_path = dir / (llama ? "tokenizer.model" : "spiece.model");
  const fs::path config_path = dir / "tokenizer_config.json";
  std::string model_bytes = text::read_required_text_file(model_path);
  const std::optional<json> config = text::read_optional_json_object(config_path);

  auto im = std::make_unique<Impl>();
  im->flavour = flavour;
  im->legacy = config_flag(config, "legacy", true, config_path);
  im->add_prefix_space = config_flag(config, "add_prefix_space", true, config_path);
  im->add_bos = llama && config_flag(config, "add_bos_token", true, config_path);
  im->add_eos = llama && config_flag(config, "add_eos_token", false, config_path);
  im->clean_up = config_flag(config, "clean_up_tokenization_spaces", !llama, config_path);

  if (!im->legacy) model_bytes.append(kNoDummyPrefix, sizeof(kNoDummyPrefix));
  const auto status = im->sp.LoadFromSerializedProto(model_bytes);
  MMFUSE_CHECK(status.ok(), bad_input,
               model_path.string() + ": not a SentencePiece model (" + status.ToString() + ")");
  im->piece_count = im->sp.GetPieceSize();
  MMFUSE_CHECK(im->piece_count > 0, bad_input, model_path.string() + ": the model has no pieces");

  std::unordered_map<std::string, int64_t> vocab;
  vocab.reserve(static_cast<size_t>(im->piece_count));
  for (int32_t i = 0; i < im->piece_count; ++i) vocab.emplace(im->sp.IdToPiece(i), i);

  int64_t extra_ids = 0;
  if (!llama && config && config->contains("extra_ids")) {
    const json& v = (*config)["extra_ids"];
    MMFUSE_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= 100000,
                 bad_input,
                 config_path.string() + ": \"extra_ids\" must be a small non-negative integer");
    extra_ids = v.get<int64_t>();
  } else if (!llama) {
    extra_ids = 100;
  }
  // The sentinels' ids are known before the special tokens are resolved, as in
  // T5Tokenizer.__init__ (they are not appended after the vocabulary).
  for (int64_t i = 0; i < extra_ids; ++i)
    vocab.emplace("<extra_id_" + std::to_string(i) + ">", im->piece_count - 1 + extra_ids - i);

  text::TokenizerSpecials specials =
      llama ? text::load_tokenizer_specials(
                  dir, vocab, {{"unk_token", "<unk>"}, {"bos_token", "<s>"}, {"eos_token", "</s>"}})
            : text::load_tokenizer_specials(
                  dir, vocab,
                  {{"eos_token", "</s>"}, {"unk_token", "<unk>"}, {"pad_token", "<pad>"}});
  if (!llama) add_t5_sentinels(specials, im->piece_count, extra_ids, dir);

  // Tables of the added and special tokens.
  for (const text::AddedToken& t : specials.added) {
    const int32_t id = checked_id(t.id, dir, t.content);
    im->added_encoder[t.content] = id;
    im->added_decoder[id] = t.content;
  }
  im->splitter = text::AddedTokenSplitter(specials.added);
  std::unordered_set<std::string> all_names;
  for (int32_t i = 0; i < im->piece_count; ++i) all_names.insert(im->sp.IdToPiece(i));
  for (const auto& [content, id] : im->added_encoder) all_names.insert(content);
  im->total_size = all_names.size();

  for (const std::string& t : specials.all_special_tokens) {
    im->special_tokens.insert(t);
    im->special_ids.insert(im->convert_token(t));
  }
  for (const auto& [content, id] : im->added_encoder)
    if (im->special_tokens.count(content) == 0) im->separate_tokens.insert(content);
  for (const std::string& t : specials.additional_special_tokens)
    if (im->convert_token(t) >= im->piece_count) im->separate_tokens.insert(t);

  for (const auto& [attr, token] : specials.specials) im->special_attrs[attr] = token.content;
  auto special_id = [&](const char* attr) {
    auto it = im->special_attrs.find(attr);
    return it == im->special_attrs.end() ? -1 : im->convert_token(it->second);
  };
  im->bos = special_id("bos_token");
  im->eos = special_id("eos_token");
  im->pad = special_id("pad_token");
  im->unk = special_id("unk_token");
  im->unk_token = im->special_attrs.count("unk_token") != 0 ? im->special_attrs["unk_token"] : "";
  im->unk_token_length = im->sp_encode(im->unk_token).size();
  return std::unique_ptr<SentencePieceTokenizer>(new SentencePieceTokenizer(std::move(im)));
}

SentencePieceTokenizer::SentencePieceTokenizer(std::unique_ptr<const Impl> impl)
    : impl_(std::move(impl)) {}
SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::vector<std::string> SentencePieceTokenizer::tokenize(const std::string& text) const {
  return impl_->tokenize(text);
}

std::vector<int32_t> SentencePieceTokenizer::encode(const std::string& text,
                                                    bool add_special_tokens) const {
  const Impl& im = *impl_;
  std::vector<int32_t> ids;
  if (add_special_tokens && im.add_bos && im.bos >= 0) ids.push_back(im.bos);
  for (const std::string& token : im.tokenize(text)) ids.push_back(im.convert_token(token));
  if (!add_special_tokens) return ids;
  if (im.flavour == SentencePieceFlavour::llama) {
    if (im.add_eos && im.eos >= 0) ids.push_back(im.eos);
  } else if (im.eos >= 0 && (ids.empty() || ids.back() != im.eos)) {
    ids.push_back(im.eos);  // T5's _add_eos_if_not_present
  }
  return ids;
}

std::string SentencePieceTokenizer::decode(const std::vector<int32_t>& ids,
                                           bool skip_special_tokens) const {
  const Impl& im = *impl_;
  // PreTrainedTokenizer._decode.
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids)
    if (!(skip_special_tokens && im.special_ids.count(id) != 0)) tokens.push_back(im.id_to_token(id));
  std::string text = text::join_decoded_tokens(
      std::move(tokens), im.separate_tokens,
      [&im](std::vector<std::string> run) { return im.tokens_to_string(std::move(run)); });
  return im.clean_up ? clean_up_tokenization(std::move(text)) : text;
}

std::string SentencePieceTokenizer::id_to_token(int32_t id) const {
  return impl_->id_to_token(id);
}

int32_t SentencePieceTokenizer::token_to_id(const std::string& token) const {
  const Impl& im = *impl_;
  if (auto it = im.added_encoder.find(token); it != im.added_encoder.end()) return it->second;
  const int32_t id = im.sp.PieceToId(token);
  // PieceToId answers the unk id for anything it does not know.
  return id >= 0 && id < im.piece_count && im.sp.IdToPiece(id) == token ? id : -1;
}

size_t SentencePieceTokenizer::size() const {
  return impl_->total_size;
}
bool SentencePieceTokenizer::is_special(int32_t id) const {
  return impl_->special_ids.count(id) != 0;
}
int32_t SentencePieceTokenizer::bos_id() const {
  return impl_->bos;
}
int32_t SentencePieceTokenizer::eos_id() const {
  return impl_->eos;
}
int32_t SentencePieceTokenizer::pad_id() const {
  return impl_->pad;
}
int32_t SentencePieceTokenizer::unk_id() const {
  return impl_->unk;
}

std::string SentencePieceTokenizer::special_token(const std::string& attribute) const {
  auto it = impl_->special_attrs.find(attribute);
  return it == impl_->special_attrs.end() ? std::string() : it->second;
}

SentencePieceFlavour SentencePieceTokenizer::flavour() const {
  return impl_->flavour;
}
bool SentencePieceTokenizer::legacy() const {
  return impl_->legacy;
}
size_t SentencePieceTokenizer::vocab_size() const {
  return static_cast<size_t>(impl_->piece_count);
}

}  // namespace mmfuse
