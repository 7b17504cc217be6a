// Speech to text with timestamps: audio file -> mono at the model's rate ->
// (chunked) wav2vec2 logits -> greedy or beam CTC decoding -> per-character and
// per-word times. Also forced alignment of a given transcript to the audio.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "models/wav2vec2.h"
#include "speech/ctc_decode.h"

namespace mmfuse {

// Decodes any audio file and converts it to mono at `rate` Hz (libsoxr).
std::vector<float> load_speech_audio(const std::filesystem::path& path, int rate);

struct CtcTranscribeOptions {
  ChunkOptions chunk;
  int beam_width = 0;  // 0 or 1: greedy; more: prefix beam search, timed by forced alignment
};

struct Transcription {
  std::string text;
  std::vector<CtcSpan> chars;  // frames
  std::vector<CtcSpan> words;  // frames
  std::vector<float> logits;   // [frames, vocab]
  size_t frames = 0;
  size_t vocab = 0;
  double frame_seconds = 0.02;
  double audio_seconds = 0;
};

Transcription transcribe(ThreadPool& pool, const Wav2Vec2ForCtc& model,
                         const std::vector<float>& samples, const CtcTranscribeOptions& opt,
                         const std::string& name);

// Forced alignment of `text` to logits [frames, vocab]: words as written in
// the text, characters as the vocabulary spells them. Characters the
// vocabulary lacks are skipped; a text with none left is bad input.
struct TextAlignment {
  std::vector<std::string> words;
  std::vector<CtcSpan> word_spans;  // frames, text = the word as written
  std::vector<float> word_scores;   // mean log-probability per word
  std::vector<CtcSpan> chars;       // frames
};
TextAlignment align_text(const std::vector<float>& logits, size_t frames,
                         const CtcVocabulary& vocab, const std::string& text);

}  // namespace mmfuse
