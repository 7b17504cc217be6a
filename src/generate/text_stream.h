// Turning generated tokens into the text a client sees, piece by piece, so a
// streamed answer concatenates to exactly the non-streamed one: decode the
// whole answer after each token and hand out only what is settled — never a
// partial UTF-8 character (nor the U+FFFD a byte-fallback tokenizer shows for
// one), never text that could still become a stop string. A stop string ends
// the answer before it (OpenAI: the stop sequence is not returned).
// Thread-safety: the free functions are pure; a TextStream belongs to one request.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "text/generative_tokenizer.h"

namespace mmfuse {

// Bytes of `text` up to its last whole UTF-8 character: a multi-byte
// sequence cut off at the end is excluded (bytes that can never start a
// character are left as they are).
size_t utf8_complete_prefix(std::string_view text);

// Bytes of `text` before a trailing run of U+FFFD (what a tokenizer decodes a
// character's first bytes to before its last byte arrives).
size_t without_trailing_replacement(std::string_view text);

struct StopScan {
  bool stopped = false;  // a stop string occurs in the text
  size_t end = 0;        // stopped: where the earliest one starts; else the bytes safe to show
};
// The earliest occurrence of any stop string, else how much of `text` cannot
// be the start of one (the longest suffix that is a proper prefix of a stop
// string is held back).
StopScan scan_stop_strings(std::string_view text, const std::vector<std::string>& stops);

// The answer text of `tokens` (special tokens skipped), cut before the first
// stop string; `stopped` says whether one was found.
std::string final_text(const GenerativeTokenizer& tokenizer, const std::vector<int32_t>& tokens,
                       const std::vector<std::string>& stops, bool* stopped = nullptr);

class TextStream {
 public:
  TextStream(const GenerativeTokenizer& tokenizer, std::vector<std::string> stops)
      : tokenizer_(tokenizer), stops_(std::move(stops)) {}

  // Adds one generated token; returns the new settled text (often "").
  // After a stop string was seen, further tokens are ignored.
  std::string push(int32_t token);
  // The generation ended: the rest of the answer (what was held back), so
  // that everything returned equals final_text(tokens).
  std::string finish();

  bool stopped() const { return stopped_; }
  const std::string& shown() const { return shown_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }

 private:
  std::string take(const std::string& text, size_t end);

  const GenerativeTokenizer& tokenizer_;
  std::vector<std::string> stops_;
  std::vector<int32_t> tokens_;
  std::string shown_;  // everything handed out so far
  bool stopped_ = false;
};

}  // namespace mmfuse
