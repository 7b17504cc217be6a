// SRT and WebVTT writers. Both formats want strictly increasing, non-empty
// cues; times are rounded to whole milliseconds, and a cue never ends before
// the next one starts later than it (CTC word spans do not overlap).
#include "speech/subtitles.h"

#include <cmath>
#include <cstdio>

#include "mmfuse/error.h"

namespace mmfuse {

std::vector<SubtitleCue> group_cues(const std::vector<TimedWord>& words,
                                    const SubtitleOptions& opt) {
  std::vector<SubtitleCue> cues;
  for (const TimedWord& w : words) {
    MMFUSE_ASSERT(w.end >= w.start);
    if (!cues.empty()) {
      SubtitleCue& c = cues.back();
      const bool fits = w.end - c.start <= opt.max_cue_seconds &&
                        c.text.size() + 1 + w.word.size() <= opt.max_cue_chars &&
                        w.start - c.end <= opt.max_gap_seconds;
      if (fits) {
        c.text += " " + w.word;
        c.end = w.end;
        continue;
      }
    }
    cues.push_back({w.start, w.end, w.word});
  }
  return cues;
}

std::string subtitle_timestamp(double seconds, char separator) {
  const long long ms = std::llround(std::max(0.0, seconds) * 1000.0);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld%c%03lld", ms / 3600000, (ms / 60000) % 60,
                (ms / 1000) % 60, separator, ms % 1000);
  return buf;
}

namespace {

// Cue text may not contain a blank line (it would end the cue), nor "-->".
std::string cue_text(std::string text) {
  for (size_t p = text.find("-->"); p != std::string::npos; p = text.find("-->"))
    text.replace(p, 3, "->");
  for (char& c : text)
    if (c == '\n' || c == '\r') c = ' ';
  return text;
}

}  // namespace

std::string to_srt(const std::vector<SubtitleCue>& cues) {
  std::string out;
  int index = 1;
  for (const SubtitleCue& c : cues) {
    out += std::to_string(index++) + "\n";
    out += subtitle_timestamp(c.start, ',') + " --> " + subtitle_timestamp(c.end, ',') + "\n";
    out += cue_text(c.text) + "\n\n";
  }
  return out;
}

std::string to_vtt(const std::vector<SubtitleCue>& cues) {
  std::string out = "WEBVTT\n\n";
  for (const SubtitleCue& c : cues) {
    out += subtitle_timestamp(c.start, '.') + " --> " + subtitle_timestamp(c.end, '.') + "\n";
    out += cue_text(c.text) + "\n\n";
  }
  return out;
}

}  // namespace mmfuse
