#include "generate/stop_strings.h"

#include <algorithm>

#include "mmfuse/error.h"

namespace mmfuse {

StopStringMatcher::StopStringMatcher(const GenerativeTokenizer* tokenizer,
                                     std::vector<std::string> stop_strings)
    : tokenizer_(tokenizer), stop_strings_(std::move(stop_strings)) {
  MMFUSE_CHECK(stop_strings_.empty() || tokenizer_ != nullptr, bad_input,
               "generation: stop_strings need the model's tokenizer");
  for (const auto& s : stop_strings_) longest_ = std::max(longest_, s.size());
}

bool StopStringMatcher::matches(std::span<const int32_t> new_tokens) const {
  if (stop_strings_.empty() || new_tokens.empty()) return false;
  // Decode a tail window only: enough tokens that the text before the last
  // token holds the longest stop string (every token gives at least one byte
  // in the usual case; when it does not, widen to the whole sequence).
  size_t window = std::min(new_tokens.size(), longest_ + 1);
  for (;;) {
    const auto tail = new_tokens.subspan(new_tokens.size() - window);
    const std::string before = tokenizer_->decode({tail.begin(), tail.end() - 1}, false);
    const std::string text = tokenizer_->decode({tail.begin(), tail.end()}, false);
    if (before.size() >= longest_ || window == new_tokens.size()) {
      // Where the last token's text starts: after the part both decodings share.
      const size_t last_start = static_cast<size_t>(
          std::mismatch(before.begin(), before.end(), text.begin(), text.end()).first -
          before.begin());
      for (const auto& stop : stop_strings_) {
        // A match must end after last_start (it reaches into the last token).
        const size_t from = last_start >= stop.size() ? last_start - stop.size() + 1 : 0;
        if (text.find(stop, from) != std::string::npos) return true;
      }
      return false;
    }
    window = std::min(new_tokens.size(), window * 2);
  }
}

}  // namespace mmfuse
