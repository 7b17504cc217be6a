// mmfuse::SpeechModel (the public API) on top of models/wav2vec2 and
// speech/transcribe: the numbers `mmfuse transcribe` and `mmfuse align` print.
#include "mmfuse/speech.h"

#include <cmath>

#include "audio/resample.h"
#include "core/thread_pool.h"
#include "models/registry.h"
#include "models/wav2vec2.h"
#include "speech/transcribe.h"

namespace mmfuse {

namespace {

// Seconds of a frame index, rounded to the microsecond (as the CLI's JSON).
double frame_time(size_t frame, double frame_seconds) {
  return std::round(static_cast<double>(frame) * frame_seconds * 1e6) / 1e6;
}

std::vector<TimedSpan> timed(const std::vector<CtcSpan>& spans, double frame_seconds) {
  std::vector<TimedSpan> out;
  out.reserve(spans.size());
  for (const CtcSpan& s : spans)
    out.push_back({s.text, frame_time(s.start, frame_seconds), frame_time(s.end, frame_seconds)});
  return out;
}

ChunkOptions chunk_options(const TranscribeOptions& o) {
  ChunkOptions c;
  c.chunk_s = o.chunk_s;
  c.stride_s = o.stride_s;
  return c;
}

class CtcSpeechModel final : public SpeechModel {
 public:
  CtcSpeechModel(std::unique_ptr<Wav2Vec2ForCtc> model, std::shared_ptr<ThreadPool> pool)
      : model_(std::move(model)), pool_(std::move(pool)) {}

  const std::string& name() const override { return model_->name(); }
  int sample_rate() const override { return model_->feature_config().sampling_rate; }

  Transcript transcribe(const std::string& audio_path, const TranscribeOptions& options) override {
    return transcribe_at_rate(load_speech_audio(audio_path, sample_rate()), options, audio_path);
  }

  Transcript transcribe(const std::vector<float>& samples, int rate,
                        const TranscribeOptions& options) override {
    return transcribe_at_rate(resampled(samples, rate), options, "samples");
  }

  Transcript align(const std::string& audio_path, const std::string& text,
                   const TranscribeOptions& options) override {
    return align_at_rate(load_speech_audio(audio_path, sample_rate()), text, options, audio_path);
  }

  Transcript align(const std::vector<float>& samples, int rate, const std::string& text,
                   const TranscribeOptions& options) override {
    return align_at_rate(resampled(samples, rate), text, options, "samples");
  }

 private:
  std::vector<float> resampled(const std::vector<float>& samples, int rate) const {
    MMFUSE_CHECK(rate > 0, bad_input,
                 "sample_rate " + std::to_string(rate) + " must be a positive number of Hz");
    return resample_audio(samples, rate, sample_rate(), "samples");
  }

  static void check(const TranscribeOptions& o) {
    MMFUSE_CHECK(o.chunk_s >= 0 && o.stride_s >= 0, bad_input,
                 "chunk_s and stride_s must not be negative");
    MMFUSE_CHECK(o.chunk_s == 0 || o.chunk_s > 2 * o.stride_s, bad_input,
                 "chunk_s " + std::to_string(o.chunk_s) + " must exceed twice stride_s " +
                     std::to_string(o.stride_s));
    MMFUSE_CHECK(o.beam_width >= 0 && o.beam_width <= 1024, bad_input,
                 "beam_width " + std::to_string(o.beam_width) + " is outside [0, 1024]");
  }

  Transcript transcribe_at_rate(const std::vector<float>& samples, const TranscribeOptions& o,
                                const std::string& where) const {
    check(o);
    CtcTranscribeOptions internal;
    internal.chunk = chunk_options(o);
    internal.beam_width = o.beam_width;
    const Transcription t = mmfuse::transcribe(*pool_, *model_, samples, internal, where);
    Transcript out;
    out.text = t.text;
    out.words = timed(t.words, t.frame_seconds);
    out.chars = timed(t.chars, t.frame_seconds);
    out.audio_seconds = t.audio_seconds;
    out.frames = t.frames;
    out.frame_seconds = t.frame_seconds;
    return out;
  }

  Transcript align_at_rate(const std::vector<float>& samples, const std::string& text,
                           const TranscribeOptions& o, const std::string& where) const {
    check(o);
    const std::vector<float> logits =
        model_->transcribe_logits(*pool_, samples, chunk_options(o), where);
    const size_t frames = logits.size() / model_->vocabulary().size();
    const TextAlignment a = align_text(logits, frames, model_->vocabulary(), text);
    const double fs = model_->frame_seconds();
    Transcript out;
    out.text = text;
    out.words = timed(a.word_spans, fs);
    for (size_t i = 0; i < out.words.size() && i < a.word_scores.size(); ++i)
      out.words[i].score = a.word_scores[i];
    out.chars = timed(a.chars, fs);
    out.audio_seconds = static_cast<double>(samples.size()) / sample_rate();
    out.frames = frames;
    out.frame_seconds = fs;
    return out;
  }

  std::unique_ptr<Wav2Vec2ForCtc> model_;
  std::shared_ptr<ThreadPool> pool_;
};

}  // namespace

std::unique_ptr<SpeechModel> SpeechModel::open(const std::string& model_dir, int threads) {
  return open(model_dir, std::make_shared<ThreadPool>(threads));
}

std::unique_ptr<SpeechModel> SpeechModel::open(const std::string& model_dir,
                                               std::shared_ptr<ThreadPool> pool) {
  MMFUSE_CHECK(pool != nullptr, bad_input, model_dir + ": no thread pool given");
  return std::make_unique<CtcSpeechModel>(open_ctc_model(model_dir), std::move(pool));
}

}  // namespace mmfuse
