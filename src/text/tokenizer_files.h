// The files every Hugging Face tokenizer folder shares (tokenizer_config.json,
// special_tokens_map.json, added_tokens.json) resolved into special and added
// tokens with their ids, the way PreTrainedTokenizer.__init__ does it, and the
// decoding steps PreTrainedTokenizer shares. Used by the CLIP BPE, GPT-2 BPE,
// WordPiece and SentencePiece tokenizers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "text/unicode_text.h"

namespace mmfuse::text {

// The file's bytes, or nullopt when it does not exist. Throws bad_input when it
// exists but cannot be read.
std::optional<std::string> read_text_file(const std::filesystem::path& path);
// The same, but a missing file is a not_found error naming it.
std::string read_required_text_file(const std::filesystem::path& path);
// A JSON object file, or nullopt when absent; malformed JSON or a non-object is bad_input.
std::optional<nlohmann::json> read_optional_json_object(const std::filesystem::path& path);

// A boolean of tokenizer_config.json: `fallback` when the key is absent or
// null; anything but true/false is bad_input naming the file and the key.
bool config_flag(const std::optional<nlohmann::json>& config, const char* key, bool fallback,
                 const std::filesystem::path& file);

// PreTrainedTokenizerBase.clean_up_tokenization (" ." -> ".", " n't" -> "n't", ...).
std::string clean_up_tokenization(std::string s);

// The middle of PreTrainedTokenizer._decode: tokens in `separate` (added tokens
// that are not special, additional special tokens past the vocabulary) stand
// alone, each run of the others becomes one text through `to_string` (the
// class's convert_tokens_to_string; empty texts before a separate token are
// dropped), and the texts are joined with spaces (4.44's decode always passes
// spaces_between_special_tokens=True).
std::string join_decoded_tokens(
    std::vector<std::string> tokens, const std::unordered_set<std::string>& separate,
    const std::function<std::string(std::vector<std::string>)>& to_string);

struct TokenizerSpecials {
  std::optional<nlohmann::json> config;  // tokenizer_config.json, when present
  // Special-token attribute ("unk_token", "cls_token", ...) -> its token.
  std::unordered_map<std::string, AddedToken> specials;
  // all_special_tokens: the attributes in HF order (bos, eos, unk, sep, pad,
  // cls, mask), then additional_special_tokens, without repeats.
  std::vector<std::string> all_special_tokens;
  // additional_special_tokens as the files list them (SentencePiece decoding
  // treats those with an id past the vocabulary as separately joined pieces).
  std::vector<std::string> additional_special_tokens;
  // Every added token with its id (added_tokens_decoder or added_tokens.json,
  // then the special tokens not yet added: their vocab id, else after the vocab).
  std::vector<AddedToken> added;
  std::unordered_map<std::string, int64_t> added_encoder;  // content -> id

  // convert_tokens_to_ids for one token: added tokens, then the vocab, else -1.
  int64_t id_of(const std::string& token,
                const std::unordered_map<std::string, int64_t>& vocab) const;
};

// Reads the folder's tokenizer_config.json / special_tokens_map.json /
// added_tokens.json. `defaults` are the tokenizer class's constructor defaults
// (attribute, content) for attributes the files leave unset or null.
TokenizerSpecials load_tokenizer_specials(
    const std::filesystem::path& dir, const std::unordered_map<std::string, int64_t>& vocab,
    const std::vector<std::pair<std::string, std::string>>& defaults);

}  // namespace mmfuse::text
