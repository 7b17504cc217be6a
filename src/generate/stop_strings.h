// The stop_strings stop: a sequence ends when the decoded text of its new
// tokens holds a stop string that reaches into the text of the last token
// (StopStringCriteria's rule: a stop string that ended before the last token
// would have stopped an earlier step).
//
// Thread-safety: const methods only.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "text/generative_tokenizer.h"

namespace mmfuse {

class StopStringMatcher {
 public:
  StopStringMatcher() = default;
  // tokenizer may be null only when stop_strings is empty (bad_input otherwise).
  StopStringMatcher(const GenerativeTokenizer* tokenizer, std::vector<std::string> stop_strings);

  bool empty() const { return stop_strings_.empty(); }
  // True when `new_tokens` (the tokens generated so far, the last one just
  // chosen) end a stop string.
  bool matches(std::span<const int32_t> new_tokens) const;

 private:
  const GenerativeTokenizer* tokenizer_ = nullptr;
  std::vector<std::string> stop_strings_;
  size_t longest_ = 0;  // bytes of the longest stop string
};

}  // namespace mmfuse
