// CtcVocabulary: reading a HF Wav2Vec2CTCTokenizer folder and mapping
// transcripts to CTC target ids.
#include "text/ctc_vocabulary.h"

#include <algorithm>
#include <cctype>

#include "core/strings.h"
#include "io/model_folder.h"
#include "mmfuse/error.h"

namespace mmfuse {

namespace fs = std::filesystem;

namespace {

// A special-token entry is either a string or an AddedToken dict {"content": ...}.
std::string token_content(const nlohmann::json& j, const std::string& fallback) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string())
    return j["content"].get<std::string>();
  return fallback;
}

}  // namespace

std::vector<std::string> utf8_chars(const std::string& text) {
  std::vector<std::string> out;
  for (size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xE  ? 3
                 : (c >> 3) == 0x1E ? 4
                                    : 1;
    len = std::min(len, text.size() - i);
    out.push_back(text.substr(i, len));
    i += len;
  }
  return out;
}

CtcVocabulary CtcVocabulary::from_tokens(std::vector<std::string> tokens, const std::string& blank,
                                         const std::string& delimiter) {
  CtcVocabulary v;
  v.tokens_ = std::move(tokens);
  for (size_t i = 0; i < v.tokens_.size(); ++i) v.ids_.emplace(v.tokens_[i], static_cast<int>(i));
  v.blank_id_ = v.id_of(blank);
  MMFUSE_CHECK(v.blank_id_ >= 0, bad_input,
               "CTC vocabulary lacks the blank token \"" + blank + "\"");
  v.delimiter_id_ = v.id_of(delimiter);
  for (const char* s : {"<s>", "</s>", "<unk>"})
    if (v.id_of(s) >= 0) v.special_.push_back(v.id_of(s));
  v.special_.push_back(v.blank_id_);
  return v;
}

CtcVocabulary CtcVocabulary::from_folder(const fs::path& dir) {
  const fs::path vocab_path = dir / "vocab.json";
  MMFUSE_CHECK(fs::exists(vocab_path), not_found,
               vocab_path.string() + ": missing (the CTC vocabulary)");
  const nlohmann::json vocab = read_json_file(vocab_path);
  MMFUSE_CHECK(vocab.is_object() && !vocab.empty(), bad_input,
               vocab_path.string() + ": must be a JSON object {token: id}");
  std::vector<std::string> tokens(vocab.size());
  std::vector<bool> seen(vocab.size(), false);
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    MMFUSE_CHECK(it.value().is_number_integer(), bad_input,
                 vocab_path.string() + ": id of \"" + it.key() + "\" is not an integer");
    const int64_t id = it.value().get<int64_t>();
    MMFUSE_CHECK(
        id >= 0 && id < static_cast<int64_t>(tokens.size()) && !seen[static_cast<size_t>(id)],
        bad_input,
        vocab_path.string() + ": ids must be 0..N-1, each once (bad id for \"" + it.key() + "\")");
    seen[static_cast<size_t>(id)] = true;
    tokens[static_cast<size_t>(id)] = it.key();
  }
  std::string pad = "<pad>", delimiter = "|";
  bool lower = false, clean_up = true;
  std::vector<std::string> special_names = {"<s>", "</s>", "<unk>"};
  for (const char* file : {"special_tokens_map.json", "tokenizer_config.json"}) {
    const fs::path p = dir / file;
    if (!fs::exists(p)) continue;
    const nlohmann::json j = read_json_file(p);
    if (!j.is_object()) continue;
    if (j.contains("pad_token")) pad = token_content(j["pad_token"], pad);
    if (j.contains("word_delimiter_token"))
      delimiter = token_content(j["word_delimiter_token"], delimiter);
    if (j.contains("do_lower_case") && j["do_lower_case"].is_boolean())
      lower = j["do_lower_case"].get<bool>();
    if (j.contains("clean_up_tokenization_spaces") &&
        j["clean_up_tokenization_spaces"].is_boolean())
      clean_up = j["clean_up_tokenization_spaces"].get<bool>();
    for (const char* key : {"bos_token", "eos_token", "unk_token"})
      if (j.contains(key)) special_names.push_back(token_content(j[key], ""));
  }
  CtcVocabulary v = from_tokens(std::move(tokens), pad, delimiter);
  v.special_.clear();
  for (const auto& s : special_names)
    if (v.id_of(s) >= 0) v.special_.push_back(v.id_of(s));
  v.special_.push_back(v.blank_id_);
  v.do_lower_case_ = lower;
  v.clean_up_ = clean_up;
  return v;
}

bool CtcVocabulary::is_special(int id) const {
  return std::find(special_.begin(), special_.end(), id) != special_.end();
}

int CtcVocabulary::id_of(const std::string& token) const {
  auto it = ids_.find(token);
  return it == ids_.end() ? -1 : it->second;
}

CtcVocabulary::Encoded CtcVocabulary::encode_words(const std::string& text) const {
  Encoded out;
  std::string word;
  auto flush = [&] {
    if (word.empty()) return;
    std::vector<int> ids;
    for (const std::string& ch : utf8_chars(word)) {
      int id = id_of(ch);
      if (id < 0) id = id_of(ascii_upper(ch));
      if (id < 0) id = id_of(ascii_lower(ch));
      if (id < 0 || id == blank_id_ || id == delimiter_id_ || is_special(id)) continue;
      ids.push_back(id);
    }
    if (!ids.empty()) {
      if (!out.ids.empty() && delimiter_id_ >= 0) out.ids.push_back(delimiter_id_);
      const size_t first = out.ids.size();
      out.ids.insert(out.ids.end(), ids.begin(), ids.end());
      out.words.push_back(word);
      out.word_spans.emplace_back(first, out.ids.size());
    }
    word.clear();
  };
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      flush();
    } else {
      word.push_back(c);
    }
  }
  flush();
  return out;
}

}  // namespace mmfuse
