// Any number of models called from any number of threads at once give the
// same numbers as one model on one thread (include/mmfuse/thread_pool.h,
// embedder.h). The ThreadSanitizer job of scripts/test.sh runs these.
#include <gtest/gtest.h>

#include <atomic>
#include <numeric>
#include <thread>

#include "../unit/test_util.h"
#include "mmfuse/embedder.h"
#include "mmfuse/thread_pool.h"

namespace mmfuse {
namespace {

using Rows = std::vector<std::vector<float>>;

double max_abs_rows(const Rows& a, const Rows& b) {
  if (a.size() != b.size()) return 1e30;
  double worst = 0.0;
  for (size_t r = 0; r < a.size(); ++r) {
    if (a[r].size() != b[r].size()) return 1e30;
    worst = std::max(worst, test::max_abs_diff(a[r], b[r]));
  }
  return worst;
}

// Runs `fn(thread_index)` on `threads` threads at once and joins them.
template <typename Fn>
void run_threads(int threads, Fn&& fn) {
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back([&fn, t] { fn(t); });
  for (auto& t : pool) t.join();
}

TEST(ConcurrencyThreadPool, CallersOnManyThreadsEachGetTheirWholeLoop) {
  ThreadPool pool(3);
  std::atomic<int> wrong{0};
  run_threads(8, [&](int t) {
    for (int round = 0; round < 50; ++round) {
      const size_t n = 100 + static_cast<size_t>(t * 7 + round);
      std::vector<int> hits(n, 0);
      pool.parallel_for(n, [&](size_t b, size_t e, int worker) {
        if (worker < 0 || worker >= pool.size()) wrong.fetch_add(1);
        for (size_t i = b; i < e; ++i) hits[i] += 1;
      });
      for (int h : hits)
        if (h != 1) wrong.fetch_add(1);
    }
  });
  EXPECT_EQ(wrong.load(), 0);
}

TEST(ConcurrencyThreadPool, NestedLoopsRunInlineOnTheTasksThread) {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> cells(64 * 64);
  pool.parallel_for(64, [&](size_t b, size_t e, int outer_worker) {
    for (size_t i = b; i < e; ++i)
      pool.parallel_for(64, [&](size_t b2, size_t e2, int inner_worker) {
        EXPECT_EQ(inner_worker, outer_worker);
        for (size_t j = b2; j < e2; ++j) cells[i * 64 + j].fetch_add(1);
      });
  });
  for (auto& c : cells) ASSERT_EQ(c.load(), 1);
}

TEST(ConcurrencyThreadPool, ExceptionsReachTheirOwnCaller) {
  ThreadPool pool(2);
  std::atomic<int> caught{0}, clean{0};
  run_threads(6, [&](int t) {
    for (int round = 0; round < 20; ++round) {
      try {
        pool.parallel_for(16, [&](size_t b, size_t, int) {
          if (t % 2 == 0 && b == 0) throw_error(ErrorKind::bad_input, "odd one out");
        });
        clean.fetch_add(1);
      } catch (const Error&) {
        caught.fetch_add(1);
      }
    }
  });
  EXPECT_EQ(caught.load(), 3 * 20);
  EXPECT_EQ(clean.load(), 3 * 20);
}

TEST(ConcurrencyThreadPool, ZeroMeansAllCoresAndBadCountsAreRefused) {
  EXPECT_EQ(ThreadPool(0).size(), hardware_threads());
  EXPECT_EQ(ThreadPool(3).size(), 3);
  EXPECT_THROW(ThreadPool(-1), Error);
  EXPECT_THROW(ThreadPool(1025), Error);
}

struct ModelCase {
  std::string dir;
  bool images;
};

// Two text-image models and a text-only one, as a program embedding mmfuse would mix them.
std::vector<ModelCase> model_cases() {
  return {{test::fixture("clip/models/clip-tiny-gelu-p16").string(), true},
          {test::fixture("chinese_clip/models/chinese-clip-tiny-p16").string(), true},
          {test::fixture("bert/models/bert-tiny-chinese").string(), false}};
}

const std::vector<std::string> kTexts = {"a photo of a cat", "一只黑色的猫坐在沙发上",
                                         "an industrial pump with a leaking valve", "a dog"};

std::vector<std::string> image_files() {
  return {test::fixture("images/img0_photo_640x480_rgb.jpg").string(),
          test::fixture("images/img2_square_224x224_rgb.png").string(),
          test::fixture("images/img5_gray_320x240_L.png").string()};
}

struct Expected {
  Rows texts, images;
};

TEST(ConcurrencyEmbedder, ManyModelsOnManyThreadsMatchOneThread) {
  const auto cases = model_cases();
  const auto images = image_files();
  std::vector<Expected> expected;
  for (const auto& c : cases) {
    auto model = Embedder::open(c.dir, 1);
    Expected e;
    e.texts = model->embed_texts(kTexts);
    if (c.images) e.images = model->embed_image_files(images);
    expected.push_back(std::move(e));
  }

  // One model shared by every thread (its own pool of 2), plus models each
  // thread opens and drops while the others compute.
  auto shared = Embedder::open(cases[0].dir, 2);
  std::atomic<int> failures{0};
  std::vector<double> worst(8, 0.0);
  run_threads(8, [&](int t) {
    try {
      for (int round = 0; round < 3; ++round) {
        const size_t which = static_cast<size_t>(t + round) % cases.size();
        auto own = Embedder::open(cases[which].dir, 1 + (t % 3));
        worst[static_cast<size_t>(t)] =
            std::max({worst[static_cast<size_t>(t)],
                      max_abs_rows(own->embed_texts(kTexts), expected[which].texts),
                      max_abs_rows(shared->embed_texts(kTexts), expected[0].texts),
                      max_abs_rows(shared->embed_image_files(images), expected[0].images)});
        if (cases[which].images)
          worst[static_cast<size_t>(t)] =
              std::max(worst[static_cast<size_t>(t)],
                       max_abs_rows(own->embed_image_files(images), expected[which].images));
      }
    } catch (const std::exception& e) {
      ADD_FAILURE() << "thread " << t << ": " << e.what();
      failures.fetch_add(1);
    }
  });
  EXPECT_EQ(failures.load(), 0);
  for (size_t t = 0; t < worst.size(); ++t) EXPECT_LE(worst[t], 1e-5) << "thread " << t;
}

TEST(ConcurrencyEmbedder, ModelsSharingOnePoolMatchOneThread) {
  const auto cases = model_cases();
  auto pool = std::make_shared<ThreadPool>(2);
  std::vector<std::unique_ptr<Embedder>> models;
  std::vector<Rows> expected;
  for (const auto& c : cases) {
    models.push_back(Embedder::open(c.dir, pool));
    expected.push_back(Embedder::open(c.dir, 1)->embed_texts(kTexts));
  }
  std::vector<double> worst(6, 0.0);
  run_threads(6, [&](int t) {
    for (int round = 0; round < 4; ++round) {
      const size_t which = static_cast<size_t>(t + round) % models.size();
      worst[static_cast<size_t>(t)] =
          std::max(worst[static_cast<size_t>(t)],
                   max_abs_rows(models[which]->embed_texts(kTexts), expected[which]));
    }
  });
  for (size_t t = 0; t < worst.size(); ++t) EXPECT_LE(worst[t], 1e-5) << "thread " << t;
}

TEST(ConcurrencyEmbedder, ClassifyFromManyThreadsMatchesOneThread) {
  const std::string dir = test::fixture("chinese_clip/models/chinese-clip-tiny-p16").string();
  const std::string image = test::fixture("images/img0_photo_640x480_rgb.jpg").string();
  const std::vector<std::string> labels = {"猫", "狗", "汽车"};
  const auto reference = Embedder::open(dir, 1)->classify(image, labels);
  auto model = Embedder::open(dir, 2);
  std::atomic<int> mismatches{0};
  run_threads(6, [&](int) {
    for (int round = 0; round < 3; ++round) {
      const auto got = model->classify(image, labels);
      for (size_t i = 0; i < got.size(); ++i)
        if (got[i].label != reference[i].label ||
            std::abs(got[i].score - reference[i].score) > 1e-5)
          mismatches.fetch_add(1);
    }
  });
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace mmfuse
