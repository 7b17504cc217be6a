// Audio input: libsndfile decoding of WAV/FLAC/OGG (any rate, depth, channel
// count), down-mix, libsoxr resampling, normalisation, silence trimming, and
// clear errors for bad files.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <numbers>

#include "audio/audio_decode.h"
#include "audio/audio_encode.h"
#include "audio/audio_preprocess.h"
#include "audio/normalize.h"
#include "audio/resample.h"
#include "audio/silence_trim.h"
#include "mmfuse/error.h"
#include "test_util.h"

namespace mmfuse {
namespace {

namespace fs = std::filesystem;
using test::fixture;

fs::path temp_dir() {
  fs::path dir =
      fs::temp_directory_path() /
      ("mmfuse_audio_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
       "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
  fs::create_directories(dir);
  return dir;
}

std::vector<float> sine(double freq, int rate, size_t n, double amp = 0.5) {
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i)
    x[i] = static_cast<float>(
        amp * std::sin(2.0 * std::numbers::pi * freq * static_cast<double>(i) / rate));
  return x;
}

// The dominant frequency by correlation with a few candidate sines.
double rms(const std::vector<float>& x) {
  double s = 0;
  for (float v : x) s += static_cast<double>(v) * v;
  return std::sqrt(s / static_cast<double>(x.size()));
}

std::string error_text(const std::function<void()>& fn, ErrorKind* kind = nullptr) {
  try {
    fn();
  } catch (const Error& e) {
    if (kind) *kind = e.kind();
    return e.what();
  }
  return "";
}

TEST(AudioDecode, ReadsPcm16Mono) {
  const AudioClip clip = decode_audio_file(fixture("sound/clips/normal_0.wav"));
  EXPECT_EQ(clip.sample_rate, 16000);
  EXPECT_EQ(clip.source_channels, 1);
  EXPECT_EQ(clip.samples.size(), 8000u);
  float peak = 0;
  for (float v : clip.samples) peak = std::max(peak, std::fabs(v));
  EXPECT_GT(peak, 0.1f);
  EXPECT_LE(peak, 0.9f);  // the generator keeps 16-bit clips below 0.9 full scale
}

TEST(AudioDecode, DownmixesChannelsByMean) {
  const AudioClip cancel = decode_audio_file(fixture("sound/clips/stereo_44k_cancel.wav"));
  EXPECT_EQ(cancel.sample_rate, 44100);
  EXPECT_EQ(cancel.source_channels, 2);
  for (float v : cancel.samples) ASSERT_NEAR(v, 0.0f, 1e-4f);  // +x and -x average to 0
  const AudioClip tone = decode_audio_file(fixture("sound/clips/stereo_44k_tone.wav"));
  EXPECT_NEAR(rms(tone.samples), 0.5 / std::sqrt(2.0), 1e-3);  // 0.5 amplitude sine
}

TEST(AudioDecode, ReadsFloatWav) {
  const AudioClip clip = decode_audio_file(fixture("sound/clips/float_8k.wav"));
  EXPECT_EQ(clip.sample_rate, 8000);
  ASSERT_EQ(clip.samples.size(), 4000u);
  const std::vector<float> want = sine(500, 8000, 4000, 0.25);
  EXPECT_LE(test::max_abs_diff(clip.samples, want), 1e-6);
}

TEST(AudioDecode, FlacOggAndMultichannelRoundTrip) {
  const fs::path dir = temp_dir();
  const int rate = 48000;
  const std::vector<float> a = sine(1000, rate, 4800), b = sine(2000, rate, 4800, 0.25);
  std::vector<float> three(3 * 4800);
  for (size_t i = 0; i < 4800; ++i) {
    three[3 * i] = a[i];
    three[3 * i + 1] = b[i];
    three[3 * i + 2] = -a[i];
  }
  std::vector<float> want(4800);
  for (size_t i = 0; i < 4800; ++i) want[i] = b[i] / 3.0f;

  write_audio_file(dir / "x.flac", three, 3, rate, SampleEncoding::pcm24);
  const AudioClip flac = decode_audio_file(dir / "x.flac");
  EXPECT_EQ(flac.source_channels, 3);
  EXPECT_EQ(flac.sample_rate, rate);
  EXPECT_LE(test::max_abs_diff(flac.samples, want), 1e-6);  // 24-bit quantisation

  write_audio_file(dir / "x.wav", three, 3, rate, SampleEncoding::pcm32);
  EXPECT_LE(test::max_abs_diff(decode_audio_file(dir / "x.wav").samples, want), 1e-7);

  write_audio_file(dir / "x.ogg", three, 3, rate, SampleEncoding::vorbis);
  const AudioClip ogg = decode_audio_file(dir / "x.ogg");
  EXPECT_EQ(ogg.sample_rate, rate);
  ASSERT_EQ(ogg.samples.size(), 4800u);
  // Lossy: the 2 kHz tone survives at about its level.
  EXPECT_NEAR(rms(ogg.samples), rms(want), 0.1 * rms(want));
  fs::remove_all(dir);
}

TEST(AudioDecode, ReadsWaveFormatExtensibleEightChannels) {
  const fs::path path = fs::path(MMFUSE_FIXTURES) /
                        "../../../shared/data/audio/mimii_valve/valve_id00_n_00000000.wav";
  if (!fs::exists(path)) GTEST_SKIP() << "shared data not present: " << path;
  const AudioClip clip = decode_audio_file(path);
  EXPECT_EQ(clip.source_channels, 8);
  EXPECT_EQ(clip.sample_rate, 16000);
  EXPECT_EQ(clip.samples.size(), 160000u);
  EXPECT_GT(rms(clip.samples), 1e-4);
}

TEST(AudioDecode, MemoryMatchesFile) {
  const fs::path path = fixture("sound/clips/stereo_44k_tone.wav");
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  const AudioClip mem = decode_audio_memory(bytes.data(), bytes.size(), "mem.wav");
  const AudioClip file = decode_audio_file(path);
  EXPECT_EQ(mem.samples, file.samples);
  EXPECT_EQ(mem.sample_rate, file.sample_rate);
  // Truncated in the middle of the data chunk: the frames present are decoded.
  const AudioClip part = decode_audio_memory(bytes.data(), 44 + 400, "part.wav");
  EXPECT_EQ(part.samples.size(), 100u);
}

TEST(AudioDecode, BadFilesGiveErrorsNamingTheFile) {
  ErrorKind kind{};
  std::string msg =
      error_text([] { decode_audio_file(fixture("sound/clips/not_audio.wav")); }, &kind);
  EXPECT_EQ(kind, ErrorKind::bad_input);
  EXPECT_NE(msg.find("not_audio.wav"), std::string::npos) << msg;
  msg = error_text([] { decode_audio_file(fixture("sound/clips/empty.wav")); }, &kind);
  EXPECT_EQ(kind, ErrorKind::bad_input);
  EXPECT_NE(msg.find("empty.wav"), std::string::npos) << msg;
  msg = error_text([] { decode_audio_file(fixture("sound/clips/missing.wav")); }, &kind);
  EXPECT_EQ(kind, ErrorKind::not_found);
  EXPECT_NE(msg.find("missing.wav"), std::string::npos) << msg;
  msg = error_text([] { decode_audio_file(fixture("sound/clips")); }, &kind);
  EXPECT_EQ(kind, ErrorKind::bad_input);
  const uint8_t header_only[] = {'R', 'I', 'F', 'F', 36, 0, 0, 0, 'W', 'A', 'V', 'E'};
  msg =
      error_text([&] { decode_audio_memory(header_only, sizeof(header_only), "hdr.wav"); }, &kind);
  EXPECT_EQ(kind, ErrorKind::bad_input);
  EXPECT_NE(msg.find("hdr.wav"), std::string::npos) << msg;
}

// A PCM16 WAV header claiming `rate` Hz over 400 samples of silence.
std::vector<uint8_t> wav_with_rate(uint32_t rate) {
  std::vector<uint8_t> w;
  auto u32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) w.push_back((v >> (8 * i)) & 0xff);
  };
  auto u16 = [&](uint16_t v) {
    w.push_back(v & 0xff);
    w.push_back(v >> 8);
  };
  auto tag = [&](const char* t) { w.insert(w.end(), t, t + 4); };
  const uint32_t data_bytes = 800;
  tag("RIFF");
  u32(36 + data_bytes);
  tag("WAVE");
  tag("fmt ");
  u32(16);
  u16(1);
  u16(1);
  u32(rate);
  u32(rate * 2);
  u16(2);
  u16(16);
  tag("data");
  u32(data_bytes);
  w.resize(w.size() + data_bytes, 0);
  return w;
}

// A fuzzer's find: a 1 Hz header turned 800 bytes into 13 minutes of 16 kHz
// samples. Rates below 1 kHz are refused, naming the file and the rate.
TEST(AudioDecode, RefusesSampleRatesBelowOneKilohertz) {
  ErrorKind kind{};
  const auto one_hz = wav_with_rate(1);
  std::string msg =
      error_text([&] { decode_audio_memory(one_hz.data(), one_hz.size(), "slow.wav"); }, &kind);
  EXPECT_EQ(kind, ErrorKind::bad_input);
  EXPECT_NE(msg.find("slow.wav"), std::string::npos) << msg;
  EXPECT_NE(msg.find("sample rate 1 Hz"), std::string::npos) << msg;
  const auto eight_khz = wav_with_rate(8000);
  EXPECT_EQ(decode_audio_memory(eight_khz.data(), eight_khz.size(), "ok.wav").sample_rate, 8000);
}

TEST(AudioResample, KeepsToneAndLength) {
  const std::vector<float> x = sine(1000, 44100, 44100);
  const std::vector<float> y = resample_audio(x, 44100, 16000, "t");
  ASSERT_EQ(y.size(), 16000u);
  // Away from the filter's start-up, the output is the same tone at 16 kHz.
  const std::vector<float> want = sine(1000, 16000, 16000);
  double worst = 0;
  for (size_t i = 1000; i < 15000; ++i)
    worst = std::max(worst, std::fabs(static_cast<double>(y[i]) - want[i]));
  EXPECT_LT(worst, 1e-3);
  // A tone above the new Nyquist frequency is removed, not aliased.
  const std::vector<float> high = resample_audio(sine(10000, 44100, 44100), 44100, 16000, "t");
  EXPECT_LT(rms(std::vector<float>(high.begin() + 1000, high.end() - 1000)), 1e-3);
  EXPECT_EQ(resample_audio(x, 44100, 44100, "t"), x);
  EXPECT_THROW(resample_audio(x, 0, 16000, "t"), Error);
}

TEST(AudioNormalize, PeakAndRms) {
  std::vector<float> x = sine(440, 16000, 16000, 0.1);
  normalize_audio(x, NormalizeMode::peak, 1.0f);
  float peak = 0;
  for (float v : x) peak = std::max(peak, std::fabs(v));
  EXPECT_NEAR(peak, 1.0f, 1e-5f);
  normalize_audio(x, NormalizeMode::rms, 0.1f);
  EXPECT_NEAR(rms(x), 0.1, 1e-5);
  std::vector<float> zeros(100, 0.0f);
  normalize_audio(zeros, NormalizeMode::peak, 1.0f);
  EXPECT_EQ(zeros, std::vector<float>(100, 0.0f));
  EXPECT_THROW(parse_normalize_mode("loud", "x"), Error);
}

TEST(AudioTrim, CutsLeadingAndTrailingSilence) {
  const AudioClip clip = decode_audio_file(fixture("sound/clips/silence_edges.wav"));
  TrimOptions opt;
  opt.min_keep_s = 0.1;  // the default 0.5 s would widen the 0.4 s of sound
  const auto ranges = non_silent_ranges(clip.samples, 16000, opt);
  ASSERT_EQ(ranges.size(), 1u);
  // 0.3 s of zeros, 0.4 s of sound, 0.3 s of zeros; boundaries within a frame.
  EXPECT_NEAR(static_cast<double>(ranges[0].first), 4800.0, 400.0);
  EXPECT_NEAR(static_cast<double>(ranges[0].second), 11200.0, 400.0);
  opt.enabled = false;
  EXPECT_EQ(trim_silence(clip.samples, 16000, opt).size(), clip.samples.size());
}

TEST(AudioTrim, InteriorGapsAndMinimumLength) {
  const int rate = 16000;
  std::vector<float> x = sine(300, rate, 8000);  // 0.5 s tone
  x.insert(x.end(), 8000, 0.0f);                 // 0.5 s silence
  const std::vector<float> tail = sine(300, rate, 8000);
  x.insert(x.end(), tail.begin(), tail.end());  // 0.5 s tone
  TrimOptions opt;
  EXPECT_EQ(trim_silence(x, rate, opt).size(), x.size());  // edges only: nothing to cut
  opt.interior = true;
  const auto ranges = non_silent_ranges(x, rate, opt);
  ASSERT_EQ(ranges.size(), 2u);
  const size_t kept = trim_silence(x, rate, opt).size();
  EXPECT_NEAR(static_cast<double>(kept), 16000.0, 800.0);
  opt.min_gap_s = 0.6;  // the gap is shorter: kept
  EXPECT_EQ(non_silent_ranges(x, rate, opt).size(), 1u);

  // A 0.1 s click in 2 s of silence: kept span grows to min_keep around it.
  std::vector<float> click(32000, 0.0f);
  for (size_t i = 16000; i < 17600; ++i) click[i] = 0.5f;
  TrimOptions keep;
  keep.min_keep_s = 0.5;
  const auto r = non_silent_ranges(click, rate, keep);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].second - r[0].first, 8000u);
  EXPECT_LE(r[0].first, 16000u);
  EXPECT_GE(r[0].second, 17600u);
  // Digital silence is kept whole.
  EXPECT_EQ(trim_silence(std::vector<float>(1000, 0.0f), rate, keep).size(), 1000u);
}

TEST(AudioPreprocess, PipelineAndConfigRoundTrip) {
  AudioPreprocessConfig config;
  const std::vector<float> x = load_audio(fixture("sound/clips/stereo_44k_tone.wav"), config);
  EXPECT_NEAR(static_cast<double>(x.size()), 0.25 * 16000, 2.0);
  float peak = 0;
  for (float v : x) peak = std::max(peak, std::fabs(v));
  EXPECT_NEAR(peak, 1.0f, 1e-5f);
  config.normalize = NormalizeMode::rms;
  config.normalize_target = 0.05f;
  config.trim.interior = true;
  const AudioPreprocessConfig back =
      preprocess_config_from_json(preprocess_config_to_json(config), "x");
  EXPECT_EQ(back.normalize, NormalizeMode::rms);
  EXPECT_FLOAT_EQ(back.normalize_target, 0.05f);
  EXPECT_TRUE(back.trim.interior);
  EXPECT_THROW(preprocess_config_from_json({{"normalize_target", 2.0}}, "x"), Error);
  EXPECT_THROW(preprocess_config_from_json({{"sample_rate", "16k"}}, "x"), Error);
}

}  // namespace
}  // namespace mmfuse
