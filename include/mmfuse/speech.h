// mmfuse public API: speech to text with a wav2vec2-CTC model folder
// (Wav2Vec2ForCTC as published on the Hugging Face hub), with per-word and
// per-character times from the CTC frames, and forced alignment of a known
// transcript to speech. Gives the numbers `mmfuse transcribe` / `mmfuse align`
// print.
//
//   auto model = mmfuse::SpeechModel::open("models/facebook--wav2vec2-base-960h");
//   mmfuse::Transcript t = model->transcribe("talk.wav");
//   for (const auto& w : t.words) std::printf("%.2f-%.2f %s\n", w.start, w.end, w.text.c_str());
//
// Thread-safety: any number of threads may call transcribe() / align() on the
// same SpeechModel (or on different ones) at once; results do not depend on
// who else is computing. The weights are read-only after open(), and the model
// computes on its own ThreadPool (or one it was handed), which runs one
// caller's loop at a time.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "mmfuse/error.h"
#include "mmfuse/export.h"
#include "mmfuse/thread_pool.h"

namespace mmfuse {

// A stretch of audio: a word or a character and when it is spoken.
struct TimedSpan {
  std::string text;
  double start = 0.0;  // seconds from the start of the audio (rounded to the microsecond)
  double end = 0.0;    // seconds, one frame past the span's last CTC frame
  // align() words only: mean log-probability of the word over its frames
  // (<= 0; closer to 0 = the speech matches the text better). 0 otherwise.
  float score = 0.0f;
};

struct Transcript {
  std::string text;              // transcribe(): the decoded text; align(): the text given
  std::vector<TimedSpan> words;  // words in order (align(): as written in the text)
  std::vector<TimedSpan> chars;  // characters as the vocabulary spells them; " " between words
  double audio_seconds = 0.0;    // length of the audio at the model's sampling rate
  size_t frames = 0;             // CTC frames the model produced
  double frame_seconds = 0.0;    // seconds per frame (0.02 for wav2vec2-base)
};

struct TranscribeOptions {
  // Long audio is cut into chunks of chunk_s seconds overlapping by stride_s on
  // each side, and the logits stitched (the HF pipeline's chunk_length_s /
  // stride_length_s). chunk_s = 0: one piece. chunk_s must exceed 2 * stride_s.
  double chunk_s = 30.0;
  double stride_s = 5.0;
  // transcribe() only: 0 or 1 = greedy decoding; more = prefix beam search of
  // this width, timed by forced alignment of the result.
  int beam_width = 0;
};

class MMFUSE_API SpeechModel {
 public:
  virtual ~SpeechModel() = default;

  // Opens a model folder (config.json, model.safetensors, vocab.json,
  // preprocessor_config.json). The model owns a pool of `threads` cores
  // (0 = all cores) that every call computes with. Throws mmfuse::Error:
  // not_found (no folder / config.json), unsupported (a model_type that
  // cannot transcribe), bad_input (a bad file, naming it and the field/tensor).
  static std::unique_ptr<SpeechModel> open(const std::string& model_dir, int threads = 0);
  // The same, computing on `pool`, which several models may share.
  static std::unique_ptr<SpeechModel> open(const std::string& model_dir,
                                           std::shared_ptr<ThreadPool> pool);

  virtual const std::string& name() const = 0;
  virtual int sample_rate() const = 0;  // Hz the model listens at (audio is resampled to it)

  // Transcribes an audio file (any format libsndfile reads, any rate, mixed
  // down to mono). Throws not_found for a missing file, bad_input for an
  // unreadable or too short clip or bad options.
  virtual Transcript transcribe(const std::string& audio_path,
                                const TranscribeOptions& options = {}) = 0;
  // The same from mono samples (floats, nominally in [-1, 1]) at `sample_rate` Hz.
  virtual Transcript transcribe(const std::vector<float>& samples, int sample_rate,
                                const TranscribeOptions& options = {}) = 0;

  // Forced alignment: times the words and characters of a known `text`
  // (Viterbi over the CTC lattice). Characters the vocabulary lacks are
  // skipped; throws bad_input when none is left or the audio is too short
  // for the text. beam_width is not used.
  virtual Transcript align(const std::string& audio_path, const std::string& text,
                           const TranscribeOptions& options = {}) = 0;
  virtual Transcript align(const std::vector<float>& samples, int sample_rate,
                           const std::string& text, const TranscribeOptions& options = {}) = 0;
};

}  // namespace mmfuse
