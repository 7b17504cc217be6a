// The transcription pipeline: decode, resample, chunked logits, CTC decoding,
// and forced alignment of known text.
#include "speech/transcribe.h"

#include "audio/audio_decode.h"
#include "audio/resample.h"
#include "mmfuse/error.h"
#include "speech/forced_align.h"

namespace mmfuse {

std::vector<float> load_speech_audio(const std::filesystem::path& path, int rate) {
  AudioClip clip = decode_audio_file(path);
  return resample_audio(clip.samples, clip.sample_rate, rate, path.string());
}

Transcription transcribe(ThreadPool& pool, const Wav2Vec2ForCtc& model,
                         const std::vector<float>& samples, const CtcTranscribeOptions& opt,
                         const std::string& name) {
  Transcription out;
  out.logits = model.transcribe_logits(pool, samples, opt.chunk, name);
  out.vocab = static_cast<size_t>(model.config().vocab_size);
  out.frames = out.logits.size() / out.vocab;
  out.frame_seconds = model.frame_seconds();
  out.audio_seconds = static_cast<double>(samples.size()) / model.feature_config().sampling_rate;
  const CtcVocabulary& vocab = model.vocabulary();
  if (opt.beam_width <= 1) {
    CtcTranscript t =
        ctc_greedy_decode(ctc_argmax(out.logits.data(), out.frames, out.vocab), vocab);
    out.text = std::move(t.text);
    out.chars = std::move(t.chars);
    out.words = std::move(t.words);
    return out;
  }
  std::vector<float> lp = out.logits;
  log_softmax_rows(lp.data(), out.frames, out.vocab);
  std::vector<int> labels =
      ctc_prefix_beam_search(lp.data(), out.frames, out.vocab, vocab.blank_id(), opt.beam_width);
  out.text = ctc_labels_text(labels, vocab);
  // The beam's labels are timed by the best path through their own lattice.
  std::vector<AlignedLabel> aligned =
      ctc_forced_align(lp.data(), out.frames, out.vocab, labels, vocab.blank_id());
  for (const AlignedLabel& a : aligned)
    out.chars.push_back({a.label == vocab.delimiter_id() ? std::string(" ") : vocab.token(a.label),
                         a.start, a.end});
  out.words = ctc_word_spans(out.chars);
  return out;
}

TextAlignment align_text(const std::vector<float>& logits, size_t frames,
                         const CtcVocabulary& vocab, const std::string& text) {
  CtcVocabulary::Encoded enc = vocab.encode_words(text);
  MMFUSE_CHECK(!enc.ids.empty(), bad_input,
               "the text to align has no characters the model's vocabulary knows");
  const size_t v = vocab.size();
  std::vector<float> lp(logits.begin(), logits.begin() + static_cast<long>(frames * v));
  log_softmax_rows(lp.data(), frames, v);
  std::vector<AlignedLabel> aligned =
      ctc_forced_align(lp.data(), frames, v, enc.ids, vocab.blank_id());
  AlignedTranscript spans = aligned_spans(aligned, vocab, enc.word_spans, enc.words);
  TextAlignment out;
  out.words = enc.words;
  out.word_spans = std::move(spans.words);
  out.word_scores = std::move(spans.word_scores);
  out.chars = std::move(spans.chars);
  return out;
}

}  // namespace mmfuse
