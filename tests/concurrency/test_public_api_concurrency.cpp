// The public models of speech.h, sound.h and sensor.h called from many threads
// at once (one shared model, models on a shared pool, models of their own)
// give the same numbers as one model on one thread. The ThreadSanitizer job
// of scripts/test.sh runs these.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "mmfuse/sensor.h"
#include "mmfuse/sound.h"
#include "mmfuse/speech.h"
#include "mmfuse/thread_pool.h"

namespace mmfuse {
namespace {

const std::string kFix = MMFUSE_FIXTURES;

template <typename Fn>
void run_threads(int threads, Fn&& fn) {
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back([&fn, t] { fn(t); });
  for (auto& t : pool) t.join();
}

std::vector<double> char_times(const Transcript& t) {
  std::vector<double> out;
  for (const auto& c : t.chars) out.push_back(c.start), out.push_back(c.end);
  return out;
}

TEST(ConcurrencyPublicApi, SpeechModelsOnManyThreadsMatchOneThread) {
  const std::string dir = kFix + "/wav2vec2/models/w2v2-tiny-lv60-style";
  const std::string wav = kFix + "/wav2vec2/audio/a4_espeak.wav";
  const Transcript ref = SpeechModel::open(dir, 1)->transcribe(wav);
  auto shared = SpeechModel::open(dir, 2);
  auto pool = std::make_shared<ThreadPool>(2);
  std::vector<int> bad(6, 0);
  run_threads(6, [&](int t) {
    try {
      auto own = t % 2 ? SpeechModel::open(dir, pool) : SpeechModel::open(dir, 1);
      for (SpeechModel* m : {own.get(), shared.get()}) {
        const Transcript got = m->transcribe(wav);
        if (got.text != ref.text || char_times(got) != char_times(ref)) ++bad[t];
      }
    } catch (const Error&) {
      ++bad[t];
    }
  });
  for (int t = 0; t < 6; ++t) EXPECT_EQ(bad[t], 0) << "thread " << t;
}

TEST(ConcurrencyPublicApi, SoundModelSharedByManyThreadsMatchesOneThread) {
  const std::string dir = kFix + "/sound/cnn_lstm/chapter_small";
  const std::vector<std::string> clips = {kFix + "/sound/clips/normal_0.wav",
                                          kFix + "/sound/clips/anomaly_clicks.wav"};
  const std::vector<SoundResult> ref = SoundModel::open(dir, 1)->judge_files(clips);
  auto shared = SoundModel::open(dir, 2);
  std::vector<int> bad(6, 0);
  run_threads(6, [&](int t) {
    try {
      for (size_t i = 0; i < clips.size(); ++i) {
        const SoundResult r = shared->judge_file(clips[i]);
        if (std::fabs(r.score - ref[i].score) > 1e-5 || r.anomaly != ref[i].anomaly) ++bad[t];
      }
    } catch (const Error&) {
      ++bad[t];
    }
  });
  for (int t = 0; t < 6; ++t) EXPECT_EQ(bad[t], 0) << "thread " << t;
}

TEST(ConcurrencyPublicApi, SensorStreamsOfOneDetectorAreIndependent) {
  std::vector<std::vector<double>> rows;
  for (int i = 0; i < 300; ++i)
    rows.push_back({std::sin(i * 0.3), std::cos(i * 0.7) + (i > 250 ? 3.0 : 0.0), i * 0.01});
  const std::vector<std::vector<double>> train(rows.begin(), rows.begin() + 200);
  auto det = SensorDetector::fit({"a", "b", "c"}, train);
  std::vector<double> ref;
  SensorScorer s = det->stream();
  for (const auto& r : rows) ref.push_back(s.push(r).score);
  std::vector<int> bad(6, 0);
  run_threads(6, [&](int t) {
    SensorScorer mine = det->stream();
    for (size_t r = 0; r < rows.size(); ++r)
      if (mine.push(rows[r]).score != ref[r]) ++bad[t];
  });
  for (int t = 0; t < 6; ++t) EXPECT_EQ(bad[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace mmfuse
