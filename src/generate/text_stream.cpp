// Incremental, UTF-8-safe detokenisation with stop-string hold-back.
#include "generate/text_stream.h"

#include <algorithm>

namespace mmfuse {

namespace {
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the sequence a lead byte starts; 0 for a continuation or invalid byte.
size_t sequence_length(unsigned char b) {
  if (b < 0x80) return 1;
  if ((b & 0xE0) == 0xC0) return 2;
  if ((b & 0xF0) == 0xE0) return 3;
  if ((b & 0xF8) == 0xF0) return 4;
  return 0;
}
}  // namespace

size_t utf8_complete_prefix(std::string_view text) {
  // Look back at most 3 bytes for the lead byte of the last sequence.
  const size_t n = text.size();
  for (size_t back = 1; back <= std::min<size_t>(4, n); ++back) {
    const auto b = static_cast<unsigned char>(text[n - back]);
    if ((b & 0xC0) == 0x80) continue;  // continuation byte: keep looking
    const size_t need = sequence_length(b);
    if (need == 0) return n;  // not UTF-8 here; nothing to wait for
    return need > back ? n - back : n;
  }
  return n;
}

size_t without_trailing_replacement(std::string_view text) {
  size_t end = text.size();
  while (end >= kReplacement.size() &&
         text.substr(end - kReplacement.size(), kReplacement.size()) == kReplacement)
    end -= kReplacement.size();
  return end;
}

StopScan scan_stop_strings(std::string_view text, const std::vector<std::string>& stops) {
  StopScan scan;
  size_t earliest = std::string_view::npos;
  for (const auto& stop : stops) {
    if (stop.empty()) continue;
    const size_t at = text.find(stop);
    if (at != std::string_view::npos) earliest = std::min(earliest, at);
  }
  if (earliest != std::string_view::npos) return {true, earliest};
  size_t held = 0;
  for (const auto& stop : stops) {
    // The longest proper prefix of `stop` that the text ends with.
    for (size_t len = std::min(stop.size() - 1, text.size()); len > held; --len)
      if (text.substr(text.size() - len) == std::string_view(stop).substr(0, len)) {
        held = len;
        break;
      }
  }
  scan.end = text.size() - held;
  return scan;
}

std::string final_text(const GenerativeTokenizer& tokenizer, const std::vector<int32_t>& tokens,
                       const std::vector<std::string>& stops, bool* stopped) {
  std::string text = tokenizer.decode(tokens, /*skip_special_tokens=*/true);
  const StopScan scan = scan_stop_strings(text, stops);
  if (stopped) *stopped = scan.stopped;
  if (scan.stopped) text.resize(scan.end);
  return text;
}

std::string TextStream::take(const std::string& text, size_t end) {
  // Text already shown is never taken back; a decode that rewrote it (rare
  // clean-up rules) continues from the same byte count.
  if (end <= shown_.size()) return "";
  std::string piece = text.substr(shown_.size(), end - shown_.size());
  shown_ += piece;
  return piece;
}

std::string TextStream::push(int32_t token) {
  if (stopped_) return "";
  tokens_.push_back(token);
  const std::string text = tokenizer_.decode(tokens_, /*skip_special_tokens=*/true);
  const std::string_view settled(
      text.data(),
      without_trailing_replacement(std::string_view(text).substr(0, utf8_complete_prefix(text))));
  const StopScan scan = scan_stop_strings(settled, stops_);
  if (scan.stopped) stopped_ = true;
  return take(text, scan.end);
}

std::string TextStream::finish() {
  if (stopped_) return "";
  bool stopped = false;
  const std::string text = final_text(tokenizer_, tokens_, stops_, &stopped);
  stopped_ = stopped;
  return take(text, text.size());
}

}  // namespace mmfuse
