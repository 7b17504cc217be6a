// wav2vec2-CTC parity against the Hugging Face reference outputs in
// tests/fixtures/wav2vec2 (bars from the reference README: feature extractor
// 1e-5, logits 1e-4 max abs, predicted ids / greedy text / offsets exact), for
// the base-style (group norm, post-LN) and lv60-style (layer norm, pre-LN) folders.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "audio/audio_decode.h"
#include "io/model_folder.h"
#include "io/safetensors.h"
#include "mmfuse/error.h"
#include "models/wav2vec2.h"
#include "speech/ctc_decode.h"
#include "test_util.h"

namespace mmfuse {
namespace {

namespace fs = std::filesystem;
using test::fixture;
using test::max_abs_diff;
using test::Reference;

const char* const kAudio[] = {"a0_chirp_1s.wav", "a1_formant_2s.wav", "a2_burst_0p25s.wav",
                              "a3_min_400samples.wav", "a4_espeak.wav"};
constexpr size_t kClips = 5;

std::vector<float> wav(size_t i) {
  AudioClip clip = decode_audio_file(fixture(std::string("wav2vec2/audio/") + kAudio[i]));
  EXPECT_EQ(clip.sample_rate, 16000);
  return clip.samples;
}

TEST(Wav2Vec2Features, NormalisationMatchesFeatureExtractor) {
  Reference ref(fixture("wav2vec2/preprocess/input_values.safetensors"));
  for (size_t i = 0; i < kClips; ++i) {
    std::vector<float> x = wav(i);
    wav2vec2_normalize(x);
    std::vector<float> expected = ref.f32("input_values_" + std::to_string(i));
    ASSERT_EQ(x.size(), expected.size()) << kAudio[i];
    EXPECT_LE(max_abs_diff(x, expected), 1e-5) << kAudio[i];
  }
}

TEST(Wav2Vec2Config, FramesAndReceptiveField) {
  Wav2Vec2Config c;
  EXPECT_EQ(c.inputs_to_logits_ratio(), 320);
  EXPECT_EQ(c.receptive_field(), 400u);
  EXPECT_EQ(c.frames_for(399), 0u);
  EXPECT_EQ(c.frames_for(400), 1u);
  EXPECT_EQ(c.frames_for(16000), 49u);
  EXPECT_EQ(c.frames_for(55577), 173u);
  // The nested floors equal the one-step formula for every length.
  for (size_t n = 400; n < 20000; ++n) ASSERT_EQ(c.frames_for(n), (n - 400) / 320 + 1) << n;
}

class Wav2Vec2Parity : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    name_ = GetParam();
    model_ = Wav2Vec2ForCtc::load(fixture("wav2vec2/models/" + name_));
    ref_ =
        std::make_unique<Reference>(fixture("wav2vec2/outputs/" + name_ + "/outputs.safetensors"));
    outputs_ = read_json_file(fixture("wav2vec2/outputs/" + name_ + "/outputs.json"));
  }
  std::vector<float> logits(size_t i, Wav2Vec2Trace* trace = nullptr) const {
    std::vector<float> x = wav(i);
    x = model_->input_values(x.data(), x.size());
    return model_->logits(test::pool(), x.data(), x.size(), trace);
  }
  std::string name_;
  std::unique_ptr<Wav2Vec2ForCtc> model_;
  std::unique_ptr<Reference> ref_;
  nlohmann::json outputs_;
};

TEST_P(Wav2Vec2Parity, LogitsMatchReference) {
  for (size_t i = 0; i < kClips; ++i) {
    std::vector<float> ours = logits(i);
    std::vector<float> expected = ref_->f32("logits_" + std::to_string(i));
    ASSERT_EQ(ours.size(), expected.size()) << kAudio[i];
    const double diff = max_abs_diff(ours, expected);
    EXPECT_LE(diff, 1e-4) << kAudio[i];
    std::printf("[ parity ] %s %s logits max abs diff %.3g\n", name_.c_str(), kAudio[i], diff);
  }
}

TEST_P(Wav2Vec2Parity, GreedyDecodingMatchesTokenizer) {
  const CtcVocabulary& vocab = model_->vocabulary();
  for (size_t i = 0; i < kClips; ++i) {
    std::vector<float> lg = logits(i);
    std::vector<int> ids = ctc_argmax(lg.data(), lg.size() / 32, 32);
    std::vector<int64_t> expected_ids = ref_->i64("predicted_ids_" + std::to_string(i));
    ASSERT_EQ(ids.size(), expected_ids.size());
    for (size_t t = 0; t < ids.size(); ++t)
      ASSERT_EQ(ids[t], expected_ids[t]) << kAudio[i] << " frame " << t;
    const nlohmann::json& per = outputs_["per_audio"][i];
    CtcTranscript tr = ctc_greedy_decode(ids, vocab);
    EXPECT_EQ(tr.text, per["text"].get<std::string>()) << kAudio[i];
    ASSERT_EQ(tr.chars.size(), per["char_offsets"].size()) << kAudio[i];
    for (size_t c = 0; c < tr.chars.size(); ++c) {
      EXPECT_EQ(tr.chars[c].text, per["char_offsets"][c]["char"].get<std::string>());
      EXPECT_EQ(tr.chars[c].start, per["char_offsets"][c]["start_offset"].get<size_t>());
      EXPECT_EQ(tr.chars[c].end, per["char_offsets"][c]["end_offset"].get<size_t>());
    }
    ASSERT_EQ(tr.words.size(), per["word_offsets"].size()) << kAudio[i];
    for (size_t w = 0; w < tr.words.size(); ++w) {
      EXPECT_EQ(tr.words[w].text, per["word_offsets"][w]["word"].get<std::string>());
      EXPECT_EQ(tr.words[w].start, per["word_offsets"][w]["start_offset"].get<size_t>());
      EXPECT_EQ(tr.words[w].end, per["word_offsets"][w]["end_offset"].get<size_t>());
    }
  }
}

TEST_P(Wav2Vec2Parity, IntermediatesMatchReference) {
  Wav2Vec2Trace trace;
  logits(0, &trace);
  EXPECT_LE(max_abs_diff(trace.extract_features, ref_->f32("extract_features_0")), 1e-4);
  ASSERT_EQ(trace.hidden_states.size(),
            static_cast<size_t>(model_->config().num_hidden_layers + 1));
  for (size_t k = 0; k < trace.hidden_states.size(); ++k)
    EXPECT_LE(max_abs_diff(trace.hidden_states[k],
                           ref_->f32("hidden_states_0_layer" + std::to_string(k))),
              1e-4)
        << "hidden_states[" << k << "]";
}

TEST_P(Wav2Vec2Parity, UnchunkedPathOfTranscribeIsTheModel) {
  // A clip shorter than one chunk goes through in one piece: bit-identical logits.
  for (size_t i : {0u, 4u}) {
    std::vector<float> raw = wav(i);
    std::vector<float> whole = logits(i);
    std::vector<float> via =
        model_->transcribe_logits(test::pool(), raw, ChunkOptions{30.0, 5.0}, "clip");
    EXPECT_EQ(via, whole);
    std::vector<float> off =
        model_->transcribe_logits(test::pool(), raw, ChunkOptions{0.0, 0.0}, "clip");
    EXPECT_EQ(off, whole);
  }
}

TEST_P(Wav2Vec2Parity, WeightNormParametrizationsLayoutLoads) {
  // The same weights saved the way torch >= 2.1 names weight norm.
  const fs::path src = fixture("wav2vec2/models/" + name_);
  const fs::path dir =
      fs::temp_directory_path() / ("mmfuse_w2v2_param_" + name_ + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(src))
    if (e.path().filename() != "model.safetensors")
      fs::copy_file(e.path(), dir / e.path().filename());
  SafetensorsFile file = SafetensorsFile::open(src / "model.safetensors");
  std::vector<TensorToWrite> tensors;
  for (const auto& [name, t] : file.tensors()) {
    std::string out = name;
    const std::string pc = "wav2vec2.encoder.pos_conv_embed.conv.";
    if (name == pc + "weight_g") out = pc + "parametrizations.weight.original0";
    if (name == pc + "weight_v") out = pc + "parametrizations.weight.original1";
    tensors.push_back({out, t.dtype, t.shape, std::vector<uint8_t>(t.data, t.data + t.nbytes)});
  }
  write_safetensors(dir / "model.safetensors", tensors);
  auto renamed = Wav2Vec2ForCtc::load(dir);
  std::vector<float> x = wav(0);
  x = renamed->input_values(x.data(), x.size());
  EXPECT_EQ(renamed->logits(test::pool(), x.data(), x.size()), logits(0));
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Folders, Wav2Vec2Parity,
                         ::testing::Values("w2v2-tiny-base-style", "w2v2-tiny-lv60-style"),
                         [](const ::testing::TestParamInfo<const char*>& param_info) {
                           std::string n = param_info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

TEST(Wav2Vec2Batched, Lv60PaddedBatchValidFramesEqualSingleRuns) {
  // HF ran all 5 clips in one padded batch with an attention mask; the valid
  // frames of each row must be what the clip gives alone.
  auto model = Wav2Vec2ForCtc::load(fixture("wav2vec2/models/w2v2-tiny-lv60-style"));
  Reference ref(fixture("wav2vec2/outputs/w2v2-tiny-lv60-style/outputs.safetensors"));
  std::vector<float> batched = ref.f32("batched_logits");
  const size_t max_frames = 173;
  for (size_t i = 0; i < kClips; ++i) {
    std::vector<float> x = wav(i);
    x = model->input_values(x.data(), x.size());
    std::vector<float> lg = model->logits(test::pool(), x.data(), x.size());
    EXPECT_LE(max_abs_diff(lg.data(), batched.data() + i * max_frames * 32, lg.size()), 1e-4)
        << kAudio[i];
  }
}

TEST(Wav2Vec2Load, BadFoldersFailClearly) {
  EXPECT_THROW(Wav2Vec2ForCtc::load(fixture("wav2vec2/no-such-model")), Error);
  try {
    Wav2Vec2ForCtc::load(fixture("clip/models/clip-tiny-quickgelu-p32"));
    FAIL() << "a CLIP folder loaded as wav2vec2";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unsupported);
    EXPECT_NE(std::string(e.what()).find("model_type"), std::string::npos) << e.what();
  }
}

TEST(Wav2Vec2Load, TooShortAudioIsBadInput) {
  auto model = Wav2Vec2ForCtc::load(fixture("wav2vec2/models/w2v2-tiny-base-style"));
  std::vector<float> samples(399, 0.1f);
  try {
    model->transcribe_logits(test::pool(), samples, ChunkOptions{}, "short.wav");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    EXPECT_NE(std::string(e.what()).find("short.wav"), std::string::npos);
  }
}

}  // namespace
}  // namespace mmfuse

namespace mmfuse {
namespace {

TEST(Wav2Vec2Chunked, LongClipStitchesEachFrameOnceFromItsChunk) {
  auto model = Wav2Vec2ForCtc::load(test::fixture("wav2vec2/models/w2v2-tiny-lv60-style"));
  // ~10.4 s: three copies of the espeak clip.
  std::vector<float> one = decode_audio_file(test::fixture("wav2vec2/audio/a4_espeak.wav")).samples,
                     clip;
  for (int i = 0; i < 3; ++i) clip.insert(clip.end(), one.begin(), one.end());
  const ChunkOptions opt{4.0, 1.0};
  std::vector<float> stitched = model->transcribe_logits(test::pool(), clip, opt, "long");
  const size_t V = 32, total = model->config().frames_for(clip.size());
  ASSERT_EQ(stitched.size(), total * V);
  std::vector<ChunkPlan> plan = plan_chunks(clip.size(), 16000, model->config(), opt);
  ASSERT_GE(plan.size(), 3u);
  for (const ChunkPlan& c : plan) {
    std::vector<float> x =
        model->input_values(clip.data() + c.sample_begin, c.sample_end - c.sample_begin);
    std::vector<float> alone = model->logits(test::pool(), x.data(), x.size());
    for (size_t f = c.own_begin; f < c.own_end; ++f)
      ASSERT_EQ(0, std::memcmp(stitched.data() + f * V, alone.data() + (f - c.first_frame) * V,
                               V * sizeof(float)))
          << "frame " << f;
  }
  // Decoding the stitched logits: every character span lies inside the clip,
  // in order, and a chunk seam never splits one emission into two characters
  // (repeats across a seam are collapsed like any other repeat).
  CtcTranscript t = ctc_greedy_decode(ctc_argmax(stitched.data(), total, V), model->vocabulary());
  for (size_t i = 0; i < t.chars.size(); ++i) {
    EXPECT_LT(t.chars[i].start, t.chars[i].end);
    EXPECT_LE(t.chars[i].end, total);
    if (i > 0) {
      EXPECT_GE(t.chars[i].start, t.chars[i - 1].end);
      if (t.chars[i].text == t.chars[i - 1].text) {
        EXPECT_GT(t.chars[i].start, t.chars[i - 1].end);
      }
    }
  }
}

TEST(Wav2Vec2Timestamps, MonotonicAndInsideTheAudio) {
  for (const char* name : {"w2v2-tiny-base-style", "w2v2-tiny-lv60-style"}) {
    auto model = Wav2Vec2ForCtc::load(test::fixture(std::string("wav2vec2/models/") + name));
    for (size_t i = 0; i < kClips; ++i) {
      std::vector<float> raw = wav(i);
      std::vector<float> lg =
          model->transcribe_logits(test::pool(), raw, ChunkOptions{}, kAudio[i]);
      CtcTranscript t =
          ctc_greedy_decode(ctc_argmax(lg.data(), lg.size() / 32, 32), model->vocabulary());
      const double duration = static_cast<double>(raw.size()) / 16000.0;
      for (const auto* spans : {&t.chars, &t.words}) {
        for (size_t k = 0; k < spans->size(); ++k) {
          const CtcSpan& s = (*spans)[k];
          EXPECT_LT(s.start, s.end);
          EXPECT_LE(static_cast<double>(s.end) * model->frame_seconds(), duration + 1e-9)
              << name << " " << kAudio[i];
          if (k > 0) {
            EXPECT_GE(s.start, (*spans)[k - 1].end);
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace mmfuse
