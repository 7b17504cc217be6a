// Subtitle files from timed words: SubRip (.srt) and WebVTT (.vtt) cues, and
// plain text. Words are grouped into cues of bounded length and duration, and
// a pause between words starts a new cue.
#pragma once

#include <string>
#include <vector>

namespace mmfuse {

struct TimedWord {
  std::string word;
  double start = 0;  // seconds
  double end = 0;    // seconds, > start
};

struct SubtitleOptions {
  double max_cue_seconds = 5.0;  // a cue spans at most this long
  size_t max_cue_chars = 42;     // and holds at most this many characters (one line)
  double max_gap_seconds = 1.0;  // a longer pause between words starts a new cue
};

struct SubtitleCue {
  double start = 0, end = 0;
  std::string text;
};

std::vector<SubtitleCue> group_cues(const std::vector<TimedWord>& words,
                                    const SubtitleOptions& opt = {});

// "HH:MM:SS,mmm" (srt) or "HH:MM:SS.mmm" (vtt), rounded to the millisecond.
std::string subtitle_timestamp(double seconds, char separator);

std::string to_srt(const std::vector<SubtitleCue>& cues);
std::string to_vtt(const std::vector<SubtitleCue>& cues);

}  // namespace mmfuse
