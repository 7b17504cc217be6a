// JSON and subtitle helpers for the speech subcommands.
#include "cli/speech_common.h"

#include <cmath>
#include <cstdio>

#include "mmfuse/error.h"

namespace mmfuse::cli {

double frame_time(size_t frame, double frame_seconds) {
  return std::round(static_cast<double>(frame) * frame_seconds * 1e6) / 1e6;
}

Json spans_json(const std::vector<CtcSpan>& spans, const char* key, double frame_seconds) {
  Json out = Json::array();
  for (const CtcSpan& s : spans)
    out.push_back({{key, s.text},
                   {"start", frame_time(s.start, frame_seconds)},
                   {"end", frame_time(s.end, frame_seconds)}});
  return out;
}

std::vector<TimedWord> timed_words(const std::vector<CtcSpan>& words, double frame_seconds) {
  std::vector<TimedWord> out;
  for (const CtcSpan& w : words)
    out.push_back({w.text, frame_time(w.start, frame_seconds), frame_time(w.end, frame_seconds)});
  return out;
}

void add_chunk_options(CLI::App* cmd, ChunkOptions* chunk) {
  cmd->add_option("--chunk-length", chunk->chunk_s,
                  "Seconds per chunk for long audio (0 = one piece; HF pipeline chunk_length_s)")
      ->capture_default_str();
  cmd->add_option("--stride-length", chunk->stride_s,
                  "Seconds of overlap on each side of a chunk (HF stride_length_s)")
      ->capture_default_str();
  // The library checks the same in frames; here the message names the flags.
  cmd->parse_complete_callback([chunk] {
    MMFUSE_CHECK(chunk->chunk_s == 0 || chunk->chunk_s > 2 * chunk->stride_s, bad_input,
                 "--chunk-length must exceed twice --stride-length");
  });
}

void print_text(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

}  // namespace mmfuse::cli
