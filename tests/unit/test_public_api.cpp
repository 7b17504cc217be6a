// The public API (include/mmfuse/) against the CLI: SpeechModel, SensorDetector
// / detect_csv, SoundModel and search_index give exactly the numbers `mmfuse
// transcribe` / `align` / `sensor detect` / `sound detect` / `search` print on
// the fixtures, and their errors have the right kinds.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "audio/audio_decode.h"
#include "mmfuse/mmfuse.h"
#include "sensor/csv_source.h"

namespace fs = std::filesystem;

namespace mmfuse {
namespace {

const std::string kFix = MMFUSE_FIXTURES;
const std::string kBase = kFix + "/wav2vec2/models/w2v2-tiny-base-style";
const std::string kLv60 = kFix + "/wav2vec2/models/w2v2-tiny-lv60-style";
const std::string kAudio = kFix + "/wav2vec2/audio";
const std::string kClips = kFix + "/sound/clips";
const std::string kPump = kFix + "/sensor/pump_semicolon.csv";
const std::string kBadRows = kFix + "/sensor/bad_rows.csv";
const std::string kClip = kFix + "/clip/models/clip-tiny-quickgelu-p32";

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs `mmfuse ARGS` and returns its stdout; fails the test on a non-zero exit.
std::string run_cli(const std::string& args) {
  const std::string cmd = quote(MMFUSE_BINARY) + " " + args + " 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) {
    ADD_FAILURE() << "popen failed: " << cmd;
    return "";
  }
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int rc = ::pclose(p);
  EXPECT_EQ(rc, 0) << cmd;
  return out;
}

nlohmann::json run_cli_json(const std::string& args) {
  return nlohmann::json::parse(run_cli(args));
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A scratch folder removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("mmfuse_public_api_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

template <typename F>
void expect_kind(ErrorKind kind, F&& f, const std::string& what) {
  try {
    f();
    ADD_FAILURE() << what << ": no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << what << ": " << e.what();
  }
}

void expect_spans(const std::vector<TimedSpan>& got, const nlohmann::json& want, const char* key,
                  bool with_score = false) {
  ASSERT_EQ(got.size(), want.size()) << key;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].text, want[i][key].get<std::string>()) << key << " " << i;
    EXPECT_EQ(got[i].start, want[i]["start"].get<double>()) << key << " " << i;
    EXPECT_EQ(got[i].end, want[i]["end"].get<double>()) << key << " " << i;
    if (with_score) {
      EXPECT_EQ(got[i].score, static_cast<float>(want[i]["score"].get<double>())) << key << i;
    }
  }
}

void expect_transcript(const Transcript& t, const nlohmann::json& cli) {
  EXPECT_EQ(t.text, cli["text"].get<std::string>());
  EXPECT_FALSE(t.chars.empty());  // not a vacuous comparison
  expect_spans(t.words, cli["words"], "word");
  expect_spans(t.chars, cli["chars"], "char");
  EXPECT_EQ(t.audio_seconds, cli["duration"].get<double>());
  EXPECT_EQ(t.frames, cli["frames"].get<size_t>());
  EXPECT_EQ(t.frame_seconds, cli["frame_seconds"].get<double>());
}

// ------------------------------------------------------------------ speech

TEST(PublicApiSpeech, TranscribeGivesTheCliNumbers) {
  auto base = SpeechModel::open(kBase, 2);
  auto lv60 = SpeechModel::open(kLv60, std::make_shared<ThreadPool>(2));
  EXPECT_EQ(base->sample_rate(), 16000);
  const std::string espeak = kAudio + "/a4_espeak.wav";
  expect_transcript(base->transcribe(espeak),
                    run_cli_json("transcribe --threads 2 --model " + kBase + " " + espeak));
  expect_transcript(lv60->transcribe(kAudio + "/a1_formant_2s.wav"),
                    run_cli_json("transcribe --threads 2 --model " + kLv60 + " " + kAudio +
                                 "/a1_formant_2s.wav"));
  TranscribeOptions beam;
  beam.beam_width = 8;
  expect_transcript(lv60->transcribe(espeak, beam),
                    run_cli_json("transcribe --beam 8 --model " + kLv60 + " " + espeak));
  TranscribeOptions chunked;
  chunked.chunk_s = 1.5;
  chunked.stride_s = 0.25;
  expect_transcript(lv60->transcribe(espeak, chunked),
                    run_cli_json("transcribe --chunk-length 1.5 --stride-length 0.25 --model " +
                                 kLv60 + " " + espeak));
  // From samples: the same as from the file (decoded and resampled alike).
  const AudioClip clip = decode_audio_file(espeak);
  const Transcript from_samples = lv60->transcribe(clip.samples, clip.sample_rate);
  const Transcript from_file = lv60->transcribe(espeak);
  EXPECT_EQ(from_samples.text, from_file.text);
  EXPECT_EQ(from_samples.frames, from_file.frames);
  ASSERT_EQ(from_samples.chars.size(), from_file.chars.size());
  for (size_t i = 0; i < from_file.chars.size(); ++i)
    EXPECT_EQ(from_samples.chars[i].start, from_file.chars[i].start);
}

TEST(PublicApiSpeech, AlignGivesTheCliNumbers) {
  auto lv60 = SpeechModel::open(kLv60, 2);
  const std::string espeak = kAudio + "/a4_espeak.wav";
  const std::string text = "hello world, this is a test of the speech recognizer.";
  const nlohmann::json cli =
      run_cli_json("align --threads 2 --model " + kLv60 + " " + espeak + " --text " + quote(text));
  const Transcript a = lv60->align(espeak, text);
  EXPECT_EQ(a.text, text);
  expect_spans(a.words, cli["words"], "word", /*with_score=*/true);
  expect_spans(a.chars, cli["chars"], "char");
  EXPECT_EQ(a.audio_seconds, cli["duration"].get<double>());
  EXPECT_EQ(a.frames, cli["frames"].get<size_t>());
  const AudioClip clip = decode_audio_file(espeak);
  const Transcript b = lv60->align(clip.samples, clip.sample_rate, text);
  ASSERT_EQ(b.words.size(), a.words.size());
  for (size_t i = 0; i < a.words.size(); ++i) EXPECT_EQ(b.words[i].start, a.words[i].start);
}

TEST(PublicApiSpeech, ErrorsHaveTheirKinds) {
  expect_kind(
      ErrorKind::not_found, [] { SpeechModel::open(kFix + "/wav2vec2/models/nope", 1); },
      "missing folder");
  expect_kind(
      ErrorKind::unsupported, [] { SpeechModel::open(kClip, 1); }, "a CLIP folder");
  auto model = SpeechModel::open(kBase, 1);
  expect_kind(
      ErrorKind::not_found, [&] { model->transcribe(kAudio + "/nope.wav"); }, "missing audio");
  TranscribeOptions bad;
  bad.chunk_s = 1.0;
  bad.stride_s = 0.5;
  try {
    model->transcribe(kAudio + "/a4_espeak.wav", bad);
    ADD_FAILURE() << "chunk_s <= 2 * stride_s accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    EXPECT_NE(std::string(e.what()).find("chunk_s"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("--"), std::string::npos) << "names a CLI flag";
  }
  expect_kind(
      ErrorKind::bad_input, [&] { model->align(kAudio + "/a4_espeak.wav", "%%% 123"); },
      "text with no known characters");
  expect_kind(
      ErrorKind::bad_input, [&] { model->transcribe(std::vector<float>(1000, 0.0f), 0); },
      "sample_rate 0");
}

// ------------------------------------------------------------------ sensor

// detect_csv gives the CSV `mmfuse sensor detect` writes, line for line.
void expect_detect_csv_matches(const std::string& input, const std::string& flags,
                               const SensorOptions& options, const SensorCsvOptions& csv) {
  TempDir tmp;
  const fs::path out = tmp.path / "out.csv";
  const nlohmann::json cli =
      run_cli_json("sensor detect --input " + input + " --out " + out.string() + " " + flags);
  const SensorCsvResult r = detect_csv(input, options, csv);
  std::string text = "row,score,anomaly\n";
  for (const SensorCsvRow& row : r.rows) {
    char score[32];
    std::snprintf(score, sizeof score, "%.9g", row.score);
    text += std::to_string(row.row) + "," + score + "," + (row.anomaly ? "1" : "0") + "\n";
  }
  EXPECT_EQ(text, read_text(out)) << input << " " << flags;
  EXPECT_EQ(r.threshold, cli["threshold"].get<double>());
  EXPECT_EQ(r.anomalies, cli["anomalies"].get<size_t>());
  EXPECT_EQ(r.channels_used, cli["channels"].get<std::vector<std::string>>());
  EXPECT_EQ(r.constant_channels, cli["constant_channels"].get<std::vector<std::string>>());
  EXPECT_EQ(r.bad_rows_skipped, cli["bad_rows_skipped"].get<size_t>());
}

TEST(PublicApiSensor, DetectCsvGivesTheCliNumbers) {
  expect_detect_csv_matches(kPump, "", {}, {});
  SensorOptions iforest;
  iforest.method = "iforest";
  iforest.seed = 3;
  iforest.smooth = 5;
  SensorCsvOptions train300;
  train300.train_rows = 300;
  expect_detect_csv_matches(kPump, "--method iforest --seed 3 --smooth 5 --train-rows 300", iforest,
                            train300);
  SensorOptions smooth5;
  smooth5.smooth = 5;
  SensorCsvOptions train40;
  train40.train_rows = 40;
  expect_detect_csv_matches(kBadRows, "--smooth 5 --train-rows 40", smooth5, train40);
  EXPECT_GT(detect_csv(kBadRows, smooth5, train40).bad_rows_skipped, 0u);
}

TEST(PublicApiSensor, FitAndStreamEqualDetectCsv) {
  const sensor::SensorTable table = sensor::read_csv(kPump, {});
  std::vector<std::vector<double>> rows(table.rows());
  for (size_t r = 0; r < table.rows(); ++r)
    rows[r].assign(table.values.row(r), table.values.row(r) + table.values.cols);
  const std::vector<std::vector<double>> train(rows.begin(), rows.begin() + 400);
  auto det = SensorDetector::fit(table.channels, train);
  const SensorCsvResult whole = detect_csv(kPump);
  EXPECT_EQ(det->threshold(), whole.threshold);
  EXPECT_EQ(det->channels(), table.channels);
  EXPECT_EQ(det->channels_used(), whole.channels_used);
  EXPECT_EQ(det->constant_channels(), whole.constant_channels);
  SensorScorer a = det->stream();
  SensorScorer b = det->stream();  // an independent stream of the same detector
  det.reset();                     // the scorers keep the fitted model alive
  ASSERT_EQ(whole.rows.size(), rows.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    const SensorScore s = a.push(rows[r]);
    EXPECT_EQ(s.score, whole.rows[r].score) << r;
    EXPECT_EQ(s.anomaly, whole.rows[r].anomaly) << r;
    if (r < 50) {
      EXPECT_EQ(b.push(rows[r]).score, s.score) << r;
    }
  }
  EXPECT_GT(whole.anomalies, 0u);
}

TEST(PublicApiSensor, ErrorsHaveTheirKinds) {
  const std::vector<std::string> channels = {"a", "b"};
  std::vector<std::vector<double>> train;
  for (int i = 0; i < 100; ++i) train.push_back({std::sin(i * 0.3), std::cos(i * 0.7) + i * 0.01});
  SensorOptions lstm;
  lstm.method = "lstm";
  expect_kind(
      ErrorKind::bad_input, [&] { SensorDetector::fit(channels, train, lstm); }, "unknown method");
  SensorOptions ignore;
  ignore.ignore_channels = {"c"};
  expect_kind(
      ErrorKind::bad_input, [&] { SensorDetector::fit(channels, train, ignore); },
      "unknown ignored channel");
  auto ragged = train;
  ragged[7].push_back(1.0);
  expect_kind(
      ErrorKind::bad_input, [&] { SensorDetector::fit(channels, ragged); }, "ragged rows");
  expect_kind(
      ErrorKind::bad_input,
      [&] {
        SensorDetector::fit(channels, {train.begin(), train.begin() + 10});
      },
      "too few rows");
  auto det = SensorDetector::fit(channels, train);
  SensorScorer s = det->stream();
  expect_kind(
      ErrorKind::bad_input, [&] { s.push({1.0}); }, "short row");
  expect_kind(
      ErrorKind::bad_input,
      [&] {
        s.push({1.0, std::nan("")});
      },
      "NaN");
  expect_kind(
      ErrorKind::not_found, [] { detect_csv(kFix + "/sensor/nope.csv"); }, "missing CSV");
  SensorCsvOptions many;
  many.train_rows = 5000;
  try {
    detect_csv(kPump, {}, many);
    ADD_FAILURE() << "train_rows beyond the file accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    EXPECT_NE(std::string(e.what()).find("train_rows"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("--"), std::string::npos) << "names a CLI flag";
  }
}

// ------------------------------------------------------------------ sound

void expect_results(const std::vector<SoundResult>& got, const nlohmann::json& cli) {
  const nlohmann::json& want = cli["results"];
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].score, want[i]["score"].get<double>()) << i;
    EXPECT_EQ(got[i].anomaly ? 1 : 0, want[i]["anomaly"].get<int>()) << i;
    EXPECT_EQ(got[i].seconds, want[i]["seconds"].get<double>()) << i;
    if (want[i].contains("probability") && !want[i]["probability"].is_null()) {
      EXPECT_EQ(got[i].probability, want[i]["probability"].get<double>()) << i;
    }
    if (want[i].contains("label")) {
      EXPECT_EQ(got[i].label, want[i]["label"].get<std::string>());
      ASSERT_EQ(got[i].probabilities.size(), want[i]["probabilities"].size());
      for (const auto& [label, p] : got[i].probabilities)
        EXPECT_EQ(p, want[i]["probabilities"][label].get<float>()) << label;
    } else {
      EXPECT_TRUE(got[i].label.empty());
    }
  }
}

TEST(PublicApiSound, JudgeGivesTheCliNumbers) {
  TempDir tmp;
  const std::string model_dir = (tmp.path / "model").string();
  std::string normals;
  for (int i = 0; i < 4; ++i) normals += " " + kClips + "/normal_" + std::to_string(i) + ".wav";
  run_cli("sound fit --threads 2 --normal" + normals + " --out " + model_dir);
  const std::vector<std::string> clips = {kClips + "/normal_0.wav", kClips + "/anomaly_clicks.wav",
                                          kClips + "/stereo_44k_tone.wav",
                                          kClips + "/float_8k.wav"};
  std::string args;
  for (const auto& c : clips) args += " " + c;
  auto gaussian = SoundModel::open(model_dir, 2);
  EXPECT_EQ(gaussian->model_type(), "sound_gaussian");
  const nlohmann::json cli = run_cli_json("sound detect --threads 2 --model " + model_dir + args);
  ASSERT_TRUE(gaussian->threshold().has_value());
  EXPECT_EQ(*gaussian->threshold(), cli["threshold"].get<double>());
  expect_results(gaussian->judge_files(clips), cli);
  std::vector<SoundResult> one_by_one;
  for (const auto& c : clips) one_by_one.push_back(gaussian->judge_file(c));
  expect_results(one_by_one, cli);
  EXPECT_FALSE(one_by_one[0].anomaly);
  EXPECT_TRUE(one_by_one[1].anomaly);
  // From samples: the same as from the file.
  const AudioClip clicks = decode_audio_file(clips[1]);
  const SoundResult s = gaussian->judge(clicks.samples, clicks.sample_rate);
  EXPECT_EQ(s.score, one_by_one[1].score);
  EXPECT_EQ(s.seconds, one_by_one[1].seconds);

  const std::string cnn_dir = kFix + "/sound/cnn_lstm/chapter_small";
  auto cnn = SoundModel::open(cnn_dir, std::make_shared<ThreadPool>(2));
  EXPECT_EQ(cnn->model_type(), "sound_cnn_lstm");
  expect_results(cnn->judge_files(clips),
                 run_cli_json("sound detect --threads 2 --model " + cnn_dir + args));
  // An overridden threshold decides as `sound detect --threshold` does.
  cnn->set_threshold(0.5);
  expect_results({cnn->judge_file(clips[1])},
                 run_cli_json("sound detect --threshold 0.5 --model " + cnn_dir + " " + clips[1]));
}

TEST(PublicApiSound, ErrorsHaveTheirKinds) {
  expect_kind(
      ErrorKind::not_found, [] { SoundModel::open(kFix + "/sound/nope", 1); }, "missing folder");
  expect_kind(
      ErrorKind::unsupported, [] { SoundModel::open(kBase, 1); }, "a wav2vec2 folder");
  auto cnn = SoundModel::open(kFix + "/sound/cnn_lstm/chapter_small", 1);
  expect_kind(
      ErrorKind::not_found, [&] { cnn->judge_file(kClips + "/nope.wav"); }, "missing clip");
  expect_kind(
      ErrorKind::bad_input, [&] { cnn->judge_file(kClips + "/not_audio.wav"); }, "not audio");
}

// ------------------------------------------------------------------ index

TEST(PublicApiIndex, SearchGivesTheCliResults) {
  TempDir tmp;
  const std::string index = (tmp.path / "idx").string();
  const std::string texts = (tmp.path / "texts.txt").string();
  std::ofstream(texts) << "a rusty pump\na photo of a cat\na red square\n";
  run_cli("index add --threads 2 --quiet --index " + index + " --model " + kClip + " " + kFix +
          "/images");
  run_cli("index add-text --threads 2 --quiet --index " + index + " " + texts);
  struct Case {
    std::string flags;
    SearchQuery query;
  };
  std::vector<Case> cases;
  {
    SearchQuery q;
    q.text = "a photo of a cat";
    cases.push_back({"--text 'a photo of a cat'", q});
    q.top_k = 3;
    cases.push_back({"--text 'a photo of a cat' --top-k 3", q});
  }
  {
    SearchQuery q;
    q.image_path = kFix + "/images/img0_photo_640x480_rgb.jpg";
    q.type = "all";
    q.min_score = 0.1f;
    cases.push_back({"--image " + q.image_path + " --type all --min-score 0.1", q});
  }
  for (const Case& c : cases) {
    const nlohmann::json cli =
        run_cli_json("search --threads 2 --index " + index + " " + c.flags)["results"];
    const std::vector<IndexHit> hits = search_index(index, c.query, 2);
    ASSERT_EQ(hits.size(), cli.size()) << c.flags;
    ASSERT_FALSE(hits.empty()) << c.flags;
    for (size_t i = 0; i < hits.size(); ++i) {
      EXPECT_EQ(hits[i].path, cli[i]["path"].get<std::string>()) << c.flags << " " << i;
      EXPECT_EQ(hits[i].id, cli[i]["id"].get<int64_t>());
      EXPECT_EQ(hits[i].type, cli[i]["type"].get<std::string>());
      EXPECT_EQ(hits[i].score, cli[i]["score"].get<float>()) << c.flags << " " << i;
      EXPECT_EQ(hits[i].text, cli[i].value("text", std::string()));
    }
  }
}

TEST(PublicApiIndex, ErrorsHaveTheirKinds) {
  TempDir tmp;
  SearchQuery q;
  q.text = "a cat";
  expect_kind(
      ErrorKind::not_found, [&] { search_index((tmp.path / "nope").string(), q, 1); },
      "missing index");
  SearchQuery both;
  both.text = "a cat";
  both.image_path = kFix + "/images/img0_photo_640x480_rgb.jpg";
  expect_kind(
      ErrorKind::bad_input,
      [&] { search_index((tmp.path / "nope").string(), both, std::make_shared<ThreadPool>(1)); },
      "text and image");
}

}  // namespace
}  // namespace mmfuse
