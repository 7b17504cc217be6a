// `mmfuse align`: forced alignment of a known transcript to speech (Viterbi
// over the CTC lattice), for subtitle re-timing: word and character times as
// JSON, or the words as SRT / WebVTT cues.
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/speech_common.h"
#include "models/registry.h"
#include "speech/transcribe.h"

namespace mmfuse::cli {

void register_align(CLI::App& app) {
  struct Options {
    std::string model, audio, text, format = "json";
    ChunkOptions chunk;
    int threads = 0;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd =
      app.add_subcommand("align", "Time a known transcript against speech (CTC forced alignment)");
  cmd->add_option("--model", opt->model, "Model folder (Wav2Vec2ForCTC)")->required();
  cmd->add_option("audio", opt->audio, "Audio file")->required();
  cmd->add_option("--text", opt->text, "The transcript to align")->required();
  cmd->add_option("--format", opt->format, "Output: json, srt or vtt")
      ->check(CLI::IsMember({"json", "srt", "vtt"}))
      ->capture_default_str();
  add_chunk_options(cmd, &opt->chunk);
  add_threads_option(cmd, &opt->threads);
  cmd->callback([opt] {
    apply_threads(opt->threads);
    auto model = open_ctc_model(opt->model);
    std::vector<float> samples =
        load_speech_audio(opt->audio, model->feature_config().sampling_rate);
    std::vector<float> logits =
        model->transcribe_logits(*command_pool(), samples, opt->chunk, opt->audio);
    const size_t frames = logits.size() / model->vocabulary().size();
    TextAlignment a = with_flag(
        "--text", [&] { return align_text(logits, frames, model->vocabulary(), opt->text); });
    const double fs = model->frame_seconds();
    if (opt->format != "json") {
      std::vector<SubtitleCue> cues = group_cues(timed_words(a.word_spans, fs));
      print_text(opt->format == "srt" ? to_srt(cues) : to_vtt(cues));
      return;
    }
    Json words = spans_json(a.word_spans, "word", fs);
    for (size_t i = 0; i < words.size(); ++i) words[i]["score"] = shortest_float(a.word_scores[i]);
    Json out;
    out["text"] = opt->text;
    out["words"] = std::move(words);
    out["chars"] = spans_json(a.chars, "char", fs);
    out["model"] = model->name();
    out["duration"] = static_cast<double>(samples.size()) / model->feature_config().sampling_rate;
    out["frames"] = frames;
    print_json(out);
  });
}

}  // namespace mmfuse::cli
