// `mmfuse speech-score`: transcribes a spoken reading and scores it against the
// reference text (chapter 4.3): WER, CER and a word-by-word alignment marking
// words correct / substituted / missing / extra, with their times.
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/speech_common.h"
#include "mmfuse/error.h"
#include "models/registry.h"
#include "speech/speech_score.h"
#include "speech/transcribe.h"

namespace mmfuse::cli {

void register_speech_score(CLI::App& app) {
  struct Options {
    std::string model, audio, reference;
    CtcTranscribeOptions transcribe;
    int threads = 0;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd =
      app.add_subcommand("speech-score", "Score a spoken reading against its reference text");
  cmd->add_option("--model", opt->model, "Model folder (Wav2Vec2ForCTC)")->required();
  cmd->add_option("audio", opt->audio, "Audio file")->required();
  cmd->add_option("--reference", opt->reference, "The text that was meant to be read")->required();
  cmd->add_option("--beam", opt->transcribe.beam_width, "Prefix beam search width (0 = greedy)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  add_chunk_options(cmd, &opt->transcribe.chunk);
  add_threads_option(cmd, &opt->threads);
  cmd->callback([opt] {
    apply_threads(opt->threads);
    MMFUSE_CHECK(!normalize_words(opt->reference).empty(), bad_input, "--reference has no words");
    auto model = open_ctc_model(opt->model);
    std::vector<float> samples =
        load_speech_audio(opt->audio, model->feature_config().sampling_rate);
    Transcription t = transcribe(*command_pool(), *model, samples, opt->transcribe, opt->audio);
    const double fs = t.frame_seconds;

    // Hypothesis words keep their frame spans; words that normalise to nothing are dropped.
    std::vector<std::string> hyp;
    std::vector<const CtcSpan*> hyp_span;
    for (const CtcSpan& w : t.words) {
      std::vector<std::string> n = normalize_words(w.text);
      for (auto& word : n) {
        hyp.push_back(word);
        hyp_span.push_back(&w);
      }
    }
    SpeechScore s = score_words(normalize_words(opt->reference), hyp);

    // Times for missing words: the reference forced-aligned to the audio (when it fits).
    std::vector<CtcSpan> ref_spans;
    try {
      std::string joined;
      for (const auto& w : s.reference_words) joined += w + " ";
      TextAlignment a = align_text(t.logits, t.frames, model->vocabulary(), joined);
      if (a.words.size() == s.reference_words.size()) ref_spans = a.word_spans;
    } catch (const Error&) {
      ref_spans.clear();  // too long for the audio, or no known characters: no times
    }

    Json words = Json::array();
    for (const WordAlignment& a : s.alignment) {
      Json w;
      w["status"] = to_string(a.status);
      w["reference"] = a.reference >= 0 ? Json(s.reference_words[static_cast<size_t>(a.reference)])
                                        : Json(nullptr);
      w["spoken"] = a.hypothesis >= 0 ? Json(s.hypothesis_words[static_cast<size_t>(a.hypothesis)])
                                      : Json(nullptr);
      const CtcSpan* span = nullptr;
      if (a.hypothesis >= 0) {
        span = hyp_span[static_cast<size_t>(a.hypothesis)];
      } else if (!ref_spans.empty()) {
        span = &ref_spans[static_cast<size_t>(a.reference)];
      }
      w["start"] = span != nullptr ? Json(frame_time(span->start, fs)) : Json(nullptr);
      w["end"] = span != nullptr ? Json(frame_time(span->end, fs)) : Json(nullptr);
      words.push_back(std::move(w));
    }
    Json out;
    out["reference"] = opt->reference;
    out["transcript"] = t.text;
    out["wer"] = s.wer;
    out["cer"] = s.cer;
    out["accuracy"] = std::max(0.0, 1.0 - s.wer);
    out["counts"] = {{"reference_words", s.reference_words.size()},
                     {"correct", s.correct},
                     {"substituted", s.substitutions},
                     {"missing", s.deletions},
                     {"extra", s.insertions}};
    out["words"] = std::move(words);
    out["model"] = model->name();
    out["duration"] = t.audio_seconds;
    print_json(out);
  });
}

}  // namespace mmfuse::cli
