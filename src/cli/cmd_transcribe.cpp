// `mmfuse transcribe`: speech to text with a wav2vec2-CTC model folder, with
// per-word / per-character timestamps from the CTC frames, as JSON, SRT,
// WebVTT or plain text.
#include <algorithm>
#include <chrono>
#include <ctime>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/speech_common.h"
#include "mmfuse/error.h"
#include "models/registry.h"
#include "speech/transcribe.h"

namespace mmfuse::cli {

void register_transcribe(CLI::App& app) {
  struct Options {
    std::string model, audio, timestamps = "all", format = "json";
    bool logits = false, timing = false;
    CtcTranscribeOptions transcribe;
    int threads = 0;
    std::string dtype = "f32";
    int repeat = 1;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("transcribe", "Transcribe speech with a wav2vec2-CTC model");
  cmd->add_option("--model", opt->model, "Model folder (Wav2Vec2ForCTC)")->required();
  cmd->add_option("audio", opt->audio, "Audio file (any format libsndfile reads, any rate)")
      ->required();
  cmd->add_option("--timestamps", opt->timestamps, "Timestamps in the JSON: char, word or all")
      ->check(CLI::IsMember({"char", "word", "all"}))
      ->capture_default_str();
  cmd->add_option("--format", opt->format, "Output: json, srt, vtt or txt")
      ->check(CLI::IsMember({"json", "srt", "vtt", "txt"}))
      ->capture_default_str();
  cmd->add_flag("--logits", opt->logits, "Add the logits (frames x vocabulary) to the JSON");
  cmd->add_flag("--timing", opt->timing,
                "Add \"timing\" (load, audio, model+decode ms; real-time factor) to the JSON");
  cmd->add_option("--repeat", opt->repeat,
                  "Transcribe N times; timing reports the median (benchmarks)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--beam", opt->transcribe.beam_width, "Prefix beam search width (0 = greedy)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  add_chunk_options(cmd, &opt->transcribe.chunk);
  add_threads_option(cmd, &opt->threads);
  add_dtype_option(cmd, &opt->dtype);
  cmd->callback([opt] {
    apply_threads(opt->threads);
    using Clock = std::chrono::steady_clock;
    auto ms = [](Clock::time_point a, Clock::time_point b) {
      return std::chrono::duration<double, std::milli>(b - a).count();
    };
    const auto t0 = Clock::now();
    auto model = open_ctc_model(opt->model, parse_precision(opt->dtype, "--dtype"));
    const auto t1 = Clock::now();
    std::vector<float> samples =
        load_speech_audio(opt->audio, model->feature_config().sampling_rate);
    const auto t2 = Clock::now();
    // CPU time of the whole process (all threads): robust to other load on the machine.
    auto cpu_ms = [] {
      timespec ts{};
      clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
      return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
    };
    std::vector<double> runs, cpu_runs;
    Transcription t;
    for (int r = 0; r < opt->repeat; ++r) {
      const auto start = Clock::now();
      const double cpu_start = cpu_ms();
      t = transcribe(*command_pool(), *model, samples, opt->transcribe, opt->audio);
      runs.push_back(ms(start, Clock::now()));
      cpu_runs.push_back(cpu_ms() - cpu_start);
    }
    std::sort(runs.begin(), runs.end());
    std::sort(cpu_runs.begin(), cpu_runs.end());
    const double transcribe_ms = runs[runs.size() / 2];
    if (opt->format == "txt") {
      print_text(t.text + "\n");
      return;
    }
    if (opt->format == "srt" || opt->format == "vtt") {
      std::vector<SubtitleCue> cues = group_cues(timed_words(t.words, t.frame_seconds));
      print_text(opt->format == "srt" ? to_srt(cues) : to_vtt(cues));
      return;
    }
    Json out;
    out["text"] = t.text;
    if (opt->timestamps != "char") out["words"] = spans_json(t.words, "word", t.frame_seconds);
    if (opt->timestamps != "word") out["chars"] = spans_json(t.chars, "char", t.frame_seconds);
    out["model"] = model->name();
    out["duration"] = t.audio_seconds;
    out["frames"] = t.frames;
    out["frame_seconds"] = t.frame_seconds;
    if (opt->timing)
      out["timing"] = {
          {"load_ms", ms(t0, t1)},
          {"audio_ms", ms(t1, t2)},
          {"transcribe_ms", transcribe_ms},
          {"transcribe_cpu_ms", cpu_runs[cpu_runs.size() / 2]},
          {"runs", runs.size()},
          {"real_time_factor", transcribe_ms / 1000.0 / std::max(1e-9, t.audio_seconds)}};
    if (opt->logits) {
      Json rows = Json::array();
      for (size_t f = 0; f < t.frames; ++f)
        rows.push_back(float_array(t.logits.data() + f * t.vocab, t.vocab));
      out["logits"] = std::move(rows);
    }
    print_json(out);
  });
}

}  // namespace mmfuse::cli
