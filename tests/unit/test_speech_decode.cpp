// CTC decoding, forced alignment, subtitles and speech scoring on constructed
// inputs with known answers (random-weight models emit noise, so alignment
// accuracy is checked on emission lattices whose segment boundaries are known).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <regex>
#include <sstream>

#include "mmfuse/error.h"
#include "models/wav2vec2.h"
#include "speech/ctc_decode.h"
#include "speech/forced_align.h"
#include "speech/speech_score.h"
#include "speech/subtitles.h"
#include "test_util.h"

namespace mmfuse {
namespace {

// <pad>=0 (blank), <s>, </s>, <unk>, |=4, then letters.
CtcVocabulary vocab() {
  return CtcVocabulary::from_tokens({"<pad>", "<s>", "</s>", "<unk>", "|", "E", "T", "A",
                                     "O",     "N",   "I",    "H",     "S", "R", "D", "L",
                                     "U",     "M",   "W",    "C",     "F", "G", "Y", "P",
                                     "B",     "V",   "K",    "'",     "X", "J", "Q", "Z"});
}

TEST(CtcGreedy, CollapsesRepeatsDropsBlanksLikeHf) {
  const CtcVocabulary v = vocab();
  const int H = v.id_of("H"), E = v.id_of("E"), L = v.id_of("L"), O = v.id_of("O"), D = 4;
  // H H _ E L L _ L O | | _ | W  ->  "HELLO  W" (two delimiters split by a blank: two spaces)
  std::vector<int> ids{H, H, 0, E, L, L, 0, L, O, D, D, 0, D, v.id_of("W")};
  CtcTranscript t = ctc_greedy_decode(ids, v);
  EXPECT_EQ(t.text, "HELLO  W");
  ASSERT_EQ(t.chars.size(), 8u);
  EXPECT_EQ(t.chars[0].text, "H");
  EXPECT_EQ(t.chars[0].start, 0u);
  EXPECT_EQ(t.chars[0].end, 2u);
  EXPECT_EQ(t.chars[3].text, "L");  // the second L, after the blank
  EXPECT_EQ(t.chars[3].start, 7u);
  EXPECT_EQ(t.chars[5].text, " ");
  EXPECT_EQ(t.chars[5].end, 11u);
  ASSERT_EQ(t.words.size(), 2u);
  EXPECT_EQ(t.words[0].text, "HELLO");
  EXPECT_EQ(t.words[0].start, 0u);
  EXPECT_EQ(t.words[0].end, 9u);
  EXPECT_EQ(t.words[1].text, "W");
  EXPECT_EQ(t.words[1].start, 13u);
  // Leading/trailing delimiters are stripped from the text but stay as chars.
  EXPECT_EQ(ctc_greedy_decode({D, 0, E, D}, v).text, "E");
  EXPECT_EQ(ctc_greedy_decode({0, 0, 0}, v).text, "");
}

// Log-probabilities [frames, vocab] from per-frame probability maps.
std::vector<float> lattice(const std::vector<std::vector<std::pair<int, float>>>& frames,
                           size_t vocab_size) {
  std::vector<float> lp;
  for (const auto& f : frames) {
    std::vector<float> row(vocab_size, 1e-6f);
    for (const auto& [id, p] : f) row[static_cast<size_t>(id)] = p;
    float sum = 0;
    for (float p : row) sum += p;
    for (float& p : row) p = std::log(p / sum);
    lp.insert(lp.end(), row.begin(), row.end());
  }
  return lp;
}

TEST(CtcBeamSearch, FindsTheMostProbableLabellingGreedyMisses) {
  const CtcVocabulary v = vocab();
  const int A = v.id_of("A");
  // Two frames of P(blank)=0.6, P(A)=0.4: the best path is blank-blank (0.36),
  // but the labelling "A" has 0.4*0.4 + 2*0.4*0.6 = 0.64.
  std::vector<float> lp = lattice({{{0, 0.6f}, {A, 0.4f}}, {{0, 0.6f}, {A, 0.4f}}}, v.size());
  EXPECT_EQ(ctc_greedy_decode(ctc_argmax(lp.data(), 2, v.size()), v).text, "");
  EXPECT_EQ(ctc_prefix_beam_search(lp.data(), 2, v.size(), 0, 8), std::vector<int>{A});
}

TEST(CtcBeamSearch, AgreesWithGreedyOnPeakedEmissions) {
  const CtcVocabulary v = vocab();
  std::mt19937 rng(7);
  std::vector<int> path;
  std::uniform_int_distribution<int> pick(4, 31);
  for (int t = 0; t < 200; ++t) path.push_back(t % 3 == 0 ? 0 : pick(rng));
  std::vector<std::vector<std::pair<int, float>>> frames;
  for (int id : path) frames.push_back({{id, 0.97f}});
  std::vector<float> lp = lattice(frames, v.size());
  CtcTranscript greedy = ctc_greedy_decode(ctc_argmax(lp.data(), path.size(), v.size()), v);
  for (int beam : {1, 4, 16})
    EXPECT_EQ(ctc_prefix_beam_search(lp.data(), path.size(), v.size(), 0, beam), greedy.labels)
        << beam;
}

TEST(CtcBeamSearch, RepeatedLabelsNeedABlank) {
  const CtcVocabulary v = vocab();
  const int L = v.id_of("L");
  std::vector<float> lp = lattice({{{L, 0.9f}}, {{0, 0.9f}}, {{L, 0.9f}}, {{L, 0.9f}}}, v.size());
  EXPECT_EQ(ctc_prefix_beam_search(lp.data(), 4, v.size(), 0, 4), (std::vector<int>{L, L}));
}

// An emission lattice where label i is likely exactly on frames [starts[i], ends[i])
// and the blank elsewhere, with random noise on top.
std::vector<float> segmented_lattice(const std::vector<int>& labels,
                                     const std::vector<size_t>& starts,
                                     const std::vector<size_t>& ends, size_t frames,
                                     size_t vocab_size, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> noise(0.0f, 0.15f);
  std::vector<std::vector<std::pair<int, float>>> rows(frames);
  for (size_t t = 0; t < frames; ++t) {
    int id = 0;
    for (size_t i = 0; i < labels.size(); ++i)
      if (t >= starts[i] && t < ends[i]) id = labels[i];
    for (size_t k = 0; k < vocab_size; ++k) rows[t].push_back({static_cast<int>(k), noise(rng)});
    rows[t][static_cast<size_t>(id)].second += 0.6f;
  }
  return lattice(rows, vocab_size);
}

TEST(ForcedAlign, RecoversKnownSegmentBoundaries) {
  const CtcVocabulary v = vocab();
  CtcVocabulary::Encoded enc = v.encode_words("Hello, world!  it's");
  ASSERT_EQ(enc.words, (std::vector<std::string>{"Hello,", "world!", "it's"}));
  // H E L L O | W O R L D | I T ' S (16 labels): the double L needs a blank in between.
  ASSERT_EQ(enc.ids.size(), 16u);
  std::vector<size_t> starts, ends;
  size_t t = 3;
  std::mt19937 rng(3);
  std::uniform_int_distribution<size_t> len(1, 6), gap(0, 3);
  for (size_t i = 0; i < enc.ids.size(); ++i) {
    if (i > 0 && enc.ids[i] == enc.ids[i - 1]) t += 1;  // blank between repeats
    t += gap(rng);
    starts.push_back(t);
    t += len(rng);
    ends.push_back(t);
  }
  const size_t frames = t + 5;
  for (unsigned seed = 0; seed < 5; ++seed) {
    std::vector<float> lp = segmented_lattice(enc.ids, starts, ends, frames, v.size(), seed);
    std::vector<AlignedLabel> a =
        ctc_forced_align(lp.data(), frames, v.size(), enc.ids, v.blank_id());
    ASSERT_EQ(a.size(), enc.ids.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_LE(std::labs(static_cast<long>(a[i].start) - static_cast<long>(starts[i])), 1) << i;
      EXPECT_LE(std::labs(static_cast<long>(a[i].end) - static_cast<long>(ends[i])), 1) << i;
      if (i > 0) {
        EXPECT_GE(a[i].start, a[i - 1].end);
      }
    }
    AlignedTranscript spans = aligned_spans(a, v, enc.word_spans, enc.words);
    ASSERT_EQ(spans.words.size(), 3u);
    EXPECT_EQ(spans.words[1].text, "world!");
    EXPECT_LE(std::labs(static_cast<long>(spans.words[1].start) - static_cast<long>(starts[6])), 1);
    EXPECT_LE(std::labs(static_cast<long>(spans.words[1].end) - static_cast<long>(ends[10])), 1);
  }
}

TEST(ForcedAlign, TightFitAndImpossibleFit) {
  const CtcVocabulary v = vocab();
  const int L = v.id_of("L");
  // "LL" needs three frames (L, blank, L).
  std::vector<float> lp = segmented_lattice({L, L}, {0, 2}, {1, 3}, 3, v.size(), 1);
  std::vector<AlignedLabel> a = ctc_forced_align(lp.data(), 3, v.size(), {L, L}, 0);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].start, 0u);
  EXPECT_EQ(a[0].end, 1u);
  EXPECT_EQ(a[1].start, 2u);
  EXPECT_THROW(ctc_forced_align(lp.data(), 2, v.size(), {L, L}, 0), Error);
  EXPECT_TRUE(ctc_forced_align(lp.data(), 3, v.size(), {}, 0).empty());
}

TEST(Subtitles, SrtAndVttFollowTheFormatRules) {
  std::vector<TimedWord> words;
  double t = 0.12;
  for (int i = 0; i < 40; ++i) {
    words.push_back({"WORD" + std::to_string(i), t, t + 0.3});
    t += (i % 9 == 8) ? 2.0 : 0.4;  // a long pause now and then
  }
  std::vector<SubtitleCue> cues = group_cues(words);
  ASSERT_GT(cues.size(), 4u);
  for (size_t i = 0; i < cues.size(); ++i) {
    EXPECT_LT(cues[i].start, cues[i].end);
    EXPECT_LE(cues[i].end - cues[i].start, 5.0 + 1e-9);
    EXPECT_LE(cues[i].text.size(), 42u);
    if (i > 0) {
      EXPECT_GE(cues[i].start, cues[i - 1].end);
    }
  }
  EXPECT_EQ(subtitle_timestamp(3723.4567, ','), "01:02:03,457");
  EXPECT_EQ(subtitle_timestamp(0.0, '.'), "00:00:00.000");

  // SRT: blocks of index (from 1), "HH:MM:SS,mmm --> HH:MM:SS,mmm", text, blank line.
  const std::regex srt_time(
      R"((\d{2}):(\d{2}):(\d{2}),(\d{3}) --> (\d{2}):(\d{2}):(\d{2}),(\d{3}))");
  std::istringstream srt(to_srt(cues));
  std::string line;
  for (size_t i = 0; i < cues.size(); ++i) {
    ASSERT_TRUE(std::getline(srt, line));
    EXPECT_EQ(line, std::to_string(i + 1));
    ASSERT_TRUE(std::getline(srt, line));
    EXPECT_TRUE(std::regex_match(line, srt_time)) << line;
    ASSERT_TRUE(std::getline(srt, line));
    EXPECT_EQ(line, cues[i].text);
    ASSERT_TRUE(std::getline(srt, line));
    EXPECT_EQ(line, "");
  }
  EXPECT_FALSE(std::getline(srt, line));

  const std::string vtt = to_vtt(cues);
  EXPECT_EQ(vtt.rfind("WEBVTT\n\n", 0), 0u);
  const std::regex vtt_time(R"(\d{2}:\d{2}:\d{2}\.\d{3} --> \d{2}:\d{2}:\d{2}\.\d{3})");
  std::istringstream vs(vtt.substr(8));
  for (size_t i = 0; i < cues.size(); ++i) {
    ASSERT_TRUE(std::getline(vs, line));
    EXPECT_TRUE(std::regex_match(line, vtt_time)) << line;
    ASSERT_TRUE(std::getline(vs, line));
    EXPECT_EQ(line, cues[i].text);
    ASSERT_TRUE(std::getline(vs, line));
    EXPECT_EQ(line, "");
  }
  // Cue text can never end a cue early or fake a timing line.
  std::vector<SubtitleCue> odd{{0.0, 1.0, "a --> b\n\nc"}};
  EXPECT_EQ(to_srt(odd), "1\n00:00:00,000 --> 00:00:01,000\na -> b  c\n\n");
}

TEST(SpeechScore, WerCerAndWordStatuses) {
  // One substitution (SAT/SIT) and one missing word (THE); every other
  // alignment costs more.
  SpeechScore s = score_speech("The cat sat on the mat.", "the cat sit on mat");
  EXPECT_EQ(s.reference_words, (std::vector<std::string>{"THE", "CAT", "SAT", "ON", "THE", "MAT"}));
  EXPECT_EQ(s.correct, 4u);
  EXPECT_EQ(s.substitutions, 1u);
  EXPECT_EQ(s.deletions, 1u);
  EXPECT_EQ(s.insertions, 0u);
  EXPECT_DOUBLE_EQ(s.wer, 2.0 / 6.0);
  std::vector<std::string> statuses;
  for (const auto& a : s.alignment) statuses.push_back(to_string(a.status));
  EXPECT_EQ(statuses, (std::vector<std::string>{"correct", "correct", "substituted", "correct",
                                                "missing", "correct"}));
  // CER: "THE CAT SAT ON THE MAT" (22 chars) -> "THE CAT SIT ON MAT": A->I and "THE " deleted = 5.
  EXPECT_EQ(s.reference_chars, 22u);
  EXPECT_EQ(s.char_edits, 5u);
  EXPECT_DOUBLE_EQ(s.cer, 5.0 / 22.0);
  SpeechScore extra = score_speech("hello world", "hello big world");
  ASSERT_EQ(extra.alignment.size(), 3u);
  EXPECT_EQ(extra.alignment[1].status, WordStatus::extra);
  EXPECT_EQ(extra.alignment[1].hypothesis, 1);
  EXPECT_EQ(extra.alignment[1].reference, -1);
  EXPECT_DOUBLE_EQ(extra.wer, 0.5);
  SpeechScore same = score_speech("Hello world", "HELLO WORLD");
  EXPECT_EQ(same.wer, 0.0);
  EXPECT_EQ(same.cer, 0.0);
  SpeechScore none = score_speech("one two", "");
  EXPECT_EQ(none.deletions, 2u);
  EXPECT_DOUBLE_EQ(none.wer, 1.0);
  EXPECT_DOUBLE_EQ(none.cer, 1.0);
}

TEST(Chunking, OwnedFramesTileTheClipOutsideTheStrides) {
  Wav2Vec2Config c;
  for (size_t samples : {400ul, 16000ul, 159999ul, 160000ul, 160321ul, 1234567ul, 16000ul * 600}) {
    for (const ChunkOptions& opt :
         {ChunkOptions{10.0, 2.0}, ChunkOptions{30.0, 5.0}, ChunkOptions{1.0, 0.02}}) {
      std::vector<ChunkPlan> plan = plan_chunks(samples, 16000, c, opt);
      size_t next = 0;
      for (size_t i = 0; i < plan.size(); ++i) {
        const ChunkPlan& p = plan[i];
        EXPECT_EQ(p.own_begin, next);
        EXPECT_LT(p.own_begin, p.own_end);
        EXPECT_EQ(p.first_frame * 320, p.sample_begin);
        const size_t local = c.frames_for(p.sample_end - p.sample_begin);
        EXPECT_LE(p.own_end, p.first_frame + local);
        const size_t stride = static_cast<size_t>(std::llround(opt.stride_s * 16000 / 320));
        if (i > 0) {
          EXPECT_GE(p.own_begin, p.first_frame + stride);  // outside the left stride
        }
        if (i + 1 < plan.size()) {
          EXPECT_LE(p.own_end + stride, p.first_frame + local + 1);
        }
        next = p.own_end;
      }
      EXPECT_EQ(next, c.frames_for(samples)) << samples;
    }
  }
  EXPECT_THROW(plan_chunks(1000000, 16000, c, ChunkOptions{10.0, 5.0}), Error);
  EXPECT_THROW(plan_chunks(1000000, 16000, c, ChunkOptions{10.0, 0.0}), Error);
}

}  // namespace
}  // namespace mmfuse
