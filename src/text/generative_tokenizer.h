// The tokenizer of a generative model (Llama / T5 SentencePiece, OPT's GPT-2
// byte-level BPE), as the slow Hugging Face tokenizers behave: encode with or
// without the special tokens the class adds, decode with or without them.
// The generation loop, chat templates, the CLI and the server use only this.
//
// Thread-safety: every method is const and may be called from many threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mmfuse {

class GenerativeTokenizer {
 public:
  virtual ~GenerativeTokenizer() = default;

  // tokenizer(text)["input_ids"]: added/special tokens written in the text are
  // matched first; add_special_tokens adds what the class adds (Llama: BOS in
  // front, T5: EOS at the end, OPT: `</s>` in front).
  virtual std::vector<int32_t> encode(const std::string& text,
                                      bool add_special_tokens = true) const = 0;
  // tokenizer.tokenize(text): the token strings, no special tokens added.
  virtual std::vector<std::string> tokenize(const std::string& text) const = 0;
  // tokenizer.decode(ids, skip_special_tokens, clean_up_tokenization_spaces
  // from tokenizer_config.json). Unknown ids are a bad_input error.
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const = 0;

  virtual std::string id_to_token(int32_t id) const = 0;
  // convert_tokens_to_ids for one token string; -1 when it is not in the vocabulary.
  virtual int32_t token_to_id(const std::string& token) const = 0;
  // len(tokenizer): the vocabulary plus added tokens.
  virtual size_t size() const = 0;
  // True for ids of special tokens (all_special_ids).
  virtual bool is_special(int32_t id) const = 0;

  // Special token ids; -1 when the tokenizer has none.
  virtual int32_t bos_id() const = 0;
  virtual int32_t eos_id() const = 0;
  virtual int32_t pad_id() const = 0;
  virtual int32_t unk_id() const = 0;
  // The string of a special-token attribute ("bos_token", "eos_token",
  // "unk_token", "pad_token"), "" when unset: chat templates read these.
  virtual std::string special_token(const std::string& attribute) const = 0;
};

}  // namespace mmfuse
