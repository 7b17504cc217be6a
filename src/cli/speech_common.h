// Helpers shared by the speech subcommands (transcribe, align, speech-score):
// options for chunking, and timed spans as JSON / subtitles.
#pragma once

#include <string>
#include <vector>

#include "cli/common.h"
#include "models/wav2vec2.h"
#include "speech/ctc_decode.h"
#include "speech/subtitles.h"

namespace mmfuse::cli {

// Adds --chunk-length / --stride-length.
void add_chunk_options(CLI::App* cmd, ChunkOptions* chunk);

// Seconds of a frame index, rounded to the microsecond for clean JSON.
double frame_time(size_t frame, double frame_seconds);

// [{"<key>": text, "start": s, "end": s}, ...]
Json spans_json(const std::vector<CtcSpan>& spans, const char* key, double frame_seconds);

std::vector<TimedWord> timed_words(const std::vector<CtcSpan>& words, double frame_seconds);

// Writes text to stdout as it is (srt / vtt / txt output).
void print_text(const std::string& text);

}  // namespace mmfuse::cli
