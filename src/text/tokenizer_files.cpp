// Special and added tokens of a Hugging Face tokenizer folder (see tokenizer_files.h).
#include "text/tokenizer_files.h"

#include <fstream>
#include <sstream>
#include <string_view>
#include <unordered_set>

#include "mmfuse/error.h"

namespace mmfuse::text {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// The special-token attributes in the order of SPECIAL_TOKENS_ATTRIBUTES.
constexpr const char* kSpecialAttrs[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                         "pad_token", "cls_token", "mask_token"};

json parse_json_text(const fs::path& path, const std::string& content) {
  try {
    return json::parse(content);
  } catch (const json::exception& e) {
    throw_error(ErrorKind::bad_input, "malformed JSON in " + path.string() + ": " + e.what());
  }
}

bool json_flag(const json& obj, const char* key, bool fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_boolean()) return fallback;
  return it->get<bool>();
}

// A special-token value from tokenizer_config.json / special_tokens_map.json:
// either a string or an AddedToken dict ({"content": ..., "lstrip": ..., ...}).
std::optional<AddedToken> parse_token_value(const json& value, const fs::path& file,
                                            const std::string& key) {
  if (value.is_null()) return std::nullopt;
  AddedToken token;
  if (value.is_string()) {
    token.content = value.get<std::string>();
    token.normalized = false;  // a str special token: AddedToken(normalized=not special)
  } else if (value.is_object()) {
    auto it = value.find("content");
    MMFUSE_CHECK(it != value.end() && it->is_string(), bad_input,
                 file.string() + ": \"" + key + "\" has no string \"content\"");
    token.content = it->get<std::string>();
    token.single_word = json_flag(value, "single_word", false);
    token.lstrip = json_flag(value, "lstrip", false);
    token.rstrip = json_flag(value, "rstrip", false);
    token.normalized = json_flag(value, "normalized", true);
  } else {
    throw_error(ErrorKind::bad_input,
                file.string() + ": \"" + key + "\" must be a string or an AddedToken object");
  }
  token.special = true;
  return token;
}

}  // namespace

std::optional<std::string> read_text_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_error(ErrorKind::bad_input, "cannot read " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw_error(ErrorKind::bad_input, "cannot read " + path.string());
  return ss.str();
}

std::string read_required_text_file(const fs::path& path) {
  std::optional<std::string> content = read_text_file(path);
  if (!content) throw_error(ErrorKind::not_found, "tokenizer file not found: " + path.string());
  return std::move(*content);
}

std::optional<json> read_optional_json_object(const fs::path& path) {
  std::optional<std::string> content = read_text_file(path);
  if (!content) return std::nullopt;
  json j = parse_json_text(path, *content);
  MMFUSE_CHECK(j.is_object(), bad_input, path.string() + ": expected a JSON object");
  return j;
}

bool config_flag(const std::optional<json>& config, const char* key, bool fallback,
                 const fs::path& file) {
  if (!config) return fallback;
  auto it = config->find(key);
  if (it == config->end() || it->is_null()) return fallback;
  MMFUSE_CHECK(it->is_boolean(), bad_input,
               file.string() + ": \"" + key + "\" must be true or false");
  return it->get<bool>();
}

std::string clean_up_tokenization(std::string s) {
  static const std::pair<std::string_view, std::string_view> kRules[] = {
      {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) {
    // str.replace: left to right, the replacement is not searched again.
    size_t pos = 0;
    while ((pos = s.find(from, pos)) != std::string::npos) {
      s.replace(pos, from.size(), to);
      pos += to.size();
    }
  }
  return s;
}

std::string join_decoded_tokens(
    std::vector<std::string> tokens, const std::unordered_set<std::string>& separate,
    const std::function<std::string(std::vector<std::string>)>& to_string) {
  std::vector<std::string> sub_texts, current;
  for (std::string& token : tokens) {
    if (separate.count(token) != 0) {
      if (!current.empty()) {
        std::string s = to_string(std::move(current));
        if (!s.empty()) sub_texts.push_back(std::move(s));
        current.clear();
      }
      sub_texts.push_back(std::move(token));
    } else {
      current.push_back(std::move(token));
    }
  }
  if (!current.empty()) sub_texts.push_back(to_string(std::move(current)));
  std::string text;
  for (size_t i = 0; i < sub_texts.size(); ++i) {
    if (i != 0) text += ' ';
    text += sub_texts[i];
  }
  return text;
}

int64_t TokenizerSpecials::id_of(const std::string& token,
                                 const std::unordered_map<std::string, int64_t>& vocab) const {
  if (auto it = added_encoder.find(token); it != added_encoder.end()) return it->second;
  if (auto it = vocab.find(token); it != vocab.end()) return it->second;
  return -1;
}

TokenizerSpecials load_tokenizer_specials(
    const fs::path& dir, const std::unordered_map<std::string, int64_t>& vocab,
    const std::vector<std::pair<std::string, std::string>>& defaults) {
  TokenizerSpecials out;
  const fs::path config_path = dir / "tokenizer_config.json";
  const fs::path map_path = dir / "special_tokens_map.json";
  const fs::path added_path = dir / "added_tokens.json";
  out.config = read_optional_json_object(config_path);

  std::unordered_map<std::string, std::optional<AddedToken>> specials;
  std::vector<AddedToken> additional;
  auto take_specials = [&](const json& obj, const fs::path& file) {
    for (const char* attr : kSpecialAttrs) {
      auto it = obj.find(attr);
      if (it != obj.end()) specials[attr] = parse_token_value(*it, file, attr);
    }
    auto it = obj.find("additional_special_tokens");
    if (it != obj.end() && it->is_array()) {
      additional.clear();
      for (const json& v : *it) {
        std::optional<AddedToken> t = parse_token_value(v, file, "additional_special_tokens");
        if (t) additional.push_back(std::move(*t));
      }
    }
  };
  if (out.config) take_specials(*out.config, config_path);

  std::vector<AddedToken> added;
  if (out.config && out.config->contains("added_tokens_decoder")) {
    const json& decoder = (*out.config)["added_tokens_decoder"];
    MMFUSE_CHECK(decoder.is_object(), bad_input,
                 config_path.string() + ": \"added_tokens_decoder\" must be an object");
    for (const auto& [key, value] : decoder.items()) {
      AddedToken t;
      try {
        size_t used = 0;
        t.id = std::stoll(key, &used);
        MMFUSE_CHECK(used == key.size(), bad_input, "");
      } catch (const std::exception&) {
        throw_error(ErrorKind::bad_input,
                    config_path.string() + ": bad added_tokens_decoder id \"" + key + "\"");
      }
      MMFUSE_CHECK(value.is_object() && value.contains("content") && value["content"].is_string(),
                   bad_input,
                   config_path.string() + ": added_tokens_decoder entry " + key +
                       " has no string \"content\"");
      t.content = value["content"].get<std::string>();
      t.single_word = json_flag(value, "single_word", false);
      t.lstrip = json_flag(value, "lstrip", false);
      t.rstrip = json_flag(value, "rstrip", false);
      t.normalized = json_flag(value, "normalized", true);
      t.special = json_flag(value, "special", false);
      added.push_back(std::move(t));
    }
  } else {
    // Legacy layout: special_tokens_map.json overrides tokenizer_config.json, and
    // added_tokens.json lists extra tokens.
    if (std::optional<json> map = read_optional_json_object(map_path))
      take_specials(*map, map_path);
    if (std::optional<json> extra = read_optional_json_object(added_path)) {
      std::unordered_set<std::string> special_contents;
      for (const auto& [attr, t] : specials)
        if (t) special_contents.insert(t->content);
      for (const auto& t : additional) special_contents.insert(t.content);
      for (const auto& [content, id] : extra->items()) {
        MMFUSE_CHECK(id.is_number_integer(), bad_input,
                     added_path.string() + ": the id of \"" + content + "\" is not an integer");
        AddedToken t;
        t.content = content;
        t.id = id.get<int64_t>();
        t.special = special_contents.count(content) != 0;
        t.normalized = !t.special;
        added.push_back(std::move(t));
      }
    }
  }

  // The tokenizer class's constructor defaults.
  for (const auto& [attr, content] : defaults) {
    if (specials.find(attr) == specials.end() || !specials[attr]) {
      AddedToken t;
      t.content = content;
      t.normalized = false;
      t.special = true;
      specials[attr] = t;
    }
  }

  // PreTrainedTokenizer.__init__: _add_tokens(all_special_tokens_extended) for the
  // special tokens not yet added; ids come from the vocab, else after it.
  for (const auto& t : added) out.added_encoder[t.content] = t.id;
  std::vector<AddedToken> special_list;
  for (const char* attr : kSpecialAttrs)
    if (specials[attr]) special_list.push_back(*specials[attr]);
  for (const auto& t : additional) {
    special_list.push_back(t);
    out.additional_special_tokens.push_back(t.content);
  }
  // len(vocab | added): counted, not copied (the vocab has ~50k strings).
  size_t known = vocab.size();
  for (const auto& [content, id] : out.added_encoder) known += vocab.count(content) == 0 ? 1 : 0;
  const auto new_index = static_cast<int64_t>(known);
  int64_t appended = 0;
  std::unordered_set<std::string> seen;
  for (AddedToken& t : special_list) {
    if (t.content.empty() || !seen.insert(t.content).second) continue;
    out.all_special_tokens.push_back(t.content);
    if (out.added_encoder.count(t.content) != 0) continue;
    auto v = vocab.find(t.content);
    t.id = v != vocab.end() ? v->second : new_index + appended++;
    out.added_encoder[t.content] = t.id;
    added.push_back(t);
  }
  for (auto& t : added)
    MMFUSE_CHECK(is_valid_utf8(t.content), bad_input,
                 dir.string() + ": added token content is not valid UTF-8");
  out.added = std::move(added);
  for (const auto& [attr, t] : specials)
    if (t) out.specials[attr] = *t;
  return out;
}

}  // namespace mmfuse::text
