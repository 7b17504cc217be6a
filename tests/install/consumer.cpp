// An outside program built against the installed libmmfuse (find_package or
// pkg-config): embeds texts and images from 8 threads at once — models opened
// while others compute, plus one shared model — and checks every row against
// a single-threaded run — and transcribes a clip with a wav2vec2 folder
// through the umbrella header. Usage:
// consumer CLIP_DIR CHINESE_CLIP_DIR BERT_DIR W2V2_DIR WAV IMAGE...
#include <mmfuse/embedder.h>
#include <mmfuse/mmfuse.h>
#include <mmfuse/thread_pool.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using Rows = std::vector<std::vector<float>>;

double max_abs(const Rows& a, const Rows& b) {
  if (a.size() != b.size()) return INFINITY;
  double worst = 0;
  for (size_t r = 0; r < a.size(); ++r) {
    if (a[r].size() != b[r].size()) return INFINITY;
    for (size_t i = 0; i < a[r].size(); ++i)
      worst = std::max(worst, static_cast<double>(std::fabs(a[r][i] - b[r][i])));
  }
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 7) {
    std::fprintf(stderr, "usage: %s CLIP_DIR CHINESE_CLIP_DIR BERT_DIR W2V2_DIR WAV IMAGE...\n",
                 argv[0]);
    return 2;
  }
  const std::vector<std::string> dirs = {argv[1], argv[2], argv[3]};
  const std::string speech_dir = argv[4], wav = argv[5];
  const std::vector<std::string> images(argv + 6, argv + argc);
  const std::vector<std::string> texts = {"a photo of a cat", "一只黑色的猫坐在沙发上",
                                          "a rusty pump"};
  try {
    // Single-threaded reference rows.
    std::vector<Rows> ref_text, ref_image;
    for (const auto& dir : dirs) {
      auto model = mmfuse::Embedder::open(dir, 1);
      ref_text.push_back(model->embed_texts(texts));
      ref_image.push_back(model->embeds_images() ? model->embed_image_files(images) : Rows{});
    }
    auto shared = mmfuse::Embedder::open(dirs[0], std::make_shared<mmfuse::ThreadPool>(2));
    std::vector<double> worst(8, 0.0);
    std::vector<std::string> errors(8);
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
      threads.emplace_back([&, t] {
        try {
          for (int round = 0; round < 2; ++round) {
            const size_t m = static_cast<size_t>(t + round) % dirs.size();
            auto own = mmfuse::Embedder::open(dirs[m], 0);  // 0 = all cores
            double w = max_abs(own->embed_texts(texts), ref_text[m]);
            if (own->embeds_images())
              w = std::max(w, max_abs(own->embed_image_files(images), ref_image[m]));
            w = std::max(w, max_abs(shared->embed_texts(texts), ref_text[0]));
            w = std::max(w, max_abs(shared->embed_image_files(images), ref_image[0]));
            worst[static_cast<size_t>(t)] = std::max(worst[static_cast<size_t>(t)], w);
          }
        } catch (const mmfuse::Error& e) {
          errors[static_cast<size_t>(t)] =
              std::string(mmfuse::to_string(e.kind())) + ": " + e.what();
        }
      });
    for (auto& th : threads) th.join();
    double overall = 0;
    for (int t = 0; t < 8; ++t) {
      if (!errors[static_cast<size_t>(t)].empty()) {
        std::fprintf(stderr, "thread %d failed: %s\n", t, errors[static_cast<size_t>(t)].c_str());
        return 1;
      }
      overall = std::max(overall, worst[static_cast<size_t>(t)]);
    }
    std::printf("8 threads, %zu models + 1 shared: max abs difference from one thread %.3g\n",
                dirs.size(), overall);
    if (!(overall <= 1e-5)) return 1;
    // Errors cross the library boundary as mmfuse::Error with their kind.
    try {
      mmfuse::Embedder::open(dirs[2], 1)->embed_image_files(images);
      std::fprintf(stderr, "a text-only model embedded an image\n");
      return 1;
    } catch (const mmfuse::Error& e) {
      if (e.kind() != mmfuse::ErrorKind::bad_input) return 1;
    }
    // Speech: the same transcript on one core and on a shared pool of two.
    const mmfuse::Transcript one = mmfuse::SpeechModel::open(speech_dir, 1)->transcribe(wav);
    const mmfuse::Transcript two =
        mmfuse::SpeechModel::open(speech_dir, std::make_shared<mmfuse::ThreadPool>(2))
            ->transcribe(wav);
    if (one.chars.empty() || one.text != two.text || one.chars.size() != two.chars.size() ||
        one.chars.back().end != two.chars.back().end || !(one.audio_seconds > 0)) {
      std::fprintf(stderr, "transcripts differ or are empty: \"%s\" vs \"%s\"\n", one.text.c_str(),
                   two.text.c_str());
      return 1;
    }
    std::printf("transcribed %.2f s: %zu words, %zu characters\n", one.audio_seconds,
                one.words.size(), one.chars.size());
  } catch (const mmfuse::Error& e) {
    std::fprintf(stderr, "%s: %s\n", mmfuse::to_string(e.kind()), e.what());
    return 1;
  }
  return 0;
}
