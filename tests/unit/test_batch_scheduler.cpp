// BatchScheduler: requests batched together get exactly what generate() gives
// each alone; queue limits, cancellation, errors, shutdown, stats.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "generate/batch_scheduler.h"
#include "generation_test_doubles.h"
#include "mmfuse/error.h"

namespace mmfuse {
namespace {

using test::ids_prompt;
using test::ToyLanguageModel;
using test::ToyTokenizer;

std::vector<GenerationRequest> mixed_requests(const ToyLanguageModel& model,
                                              const GenerativeTokenizer* tokenizer) {
  std::vector<GenerationRequest> out;
  for (int i = 0; i < 8; ++i) {
    GenerationRequest r;
    r.model = &model;
    r.tokenizer = tokenizer;
    r.prompt = ids_prompt({static_cast<int32_t>(1 + i % 5), static_cast<int32_t>(4 + i % 7)});
    r.config.max_new_tokens = 6 + 3 * i;
    r.config.eos_token_ids = {3};
    switch (i % 4) {
      case 0: break;  // greedy
      case 1:
        r.config.do_sample = true, r.config.seed = 100 + static_cast<uint64_t>(i),
        r.config.top_p = 0.9f;
        r.config.temperature = 1.3f;
        break;
      case 2:
        r.config.do_sample = true, r.config.seed = 7, r.config.num_return_sequences = 2;
        r.config.repetition_penalty = 1.2f;
        break;
      case 3: r.config.num_beams = 3, r.config.num_return_sequences = 2; break;
    }
    if (i == 4) r.config.stop_strings = {"ba"};
    out.push_back(r);
  }
  return out;
}

// Blocks the worker inside on_token until released.
struct Gate {
  std::mutex m;
  std::condition_variable cv;
  bool open = false;
  bool entered = false;
  bool wait() {
    std::unique_lock<std::mutex> lock(m);
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return open; });
    return true;
  }
  void wait_entered() {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return entered; });
  }
  void release() {
    std::lock_guard<std::mutex> lock(m);
    open = true;
    cv.notify_all();
  }
};

void expect_same(const GenerationResult& a, const GenerationResult& b) {
  ASSERT_EQ(a.sequences.size(), b.sequences.size());
  for (size_t i = 0; i < a.sequences.size(); ++i) {
    EXPECT_EQ(a.sequences[i].tokens, b.sequences[i].tokens) << "sequence " << i;
    EXPECT_EQ(a.sequences[i].finish_reason, b.sequences[i].finish_reason) << "sequence " << i;
    EXPECT_DOUBLE_EQ(a.sequences[i].score, b.sequences[i].score) << "sequence " << i;
  }
  EXPECT_EQ(a.prompt_positions, b.prompt_positions);
}

TEST(BatchScheduler, EightConcurrentRequestsGetWhatGenerateGivesEachAlone) {
  ToyLanguageModel model(12, 21);
  ToyTokenizer tokenizer({"<pad>", "<s>", "</s>", "a", "b", "c", "d", "e", "f", "g", "h", "i"});
  const auto requests = mixed_requests(model, &tokenizer);
  std::vector<GenerationResult> alone;
  for (const auto& r : requests) alone.push_back(generate(r));
  model.widest_batch = 0;

  BatchScheduler scheduler({/*max_running=*/8, /*max_queued=*/64});
  std::vector<std::future<GenerationResult>> futures;
  // The first request holds the worker until all are queued, so they overlap.
  Gate gate;
  for (size_t i = 0; i < requests.size(); ++i) {
    GenerationRequest r = requests[i];
    if (i == 0) r.on_token = [&gate](int32_t) { return gate.wait(); };
    auto f = scheduler.submit(r);
    ASSERT_TRUE(f.has_value());
    futures.push_back(std::move(*f));
  }
  gate.release();
  for (size_t i = 0; i < futures.size(); ++i) {
    SCOPED_TRACE("request " + std::to_string(i));
    expect_same(futures[i].get(), alone[i]);
  }
  EXPECT_GT(model.widest_batch.load(), 3u);  // sequences of several requests shared decode calls
  const auto stats = scheduler.stats();
  EXPECT_EQ(stats.requests_completed, 8u);
  EXPECT_GT(stats.tokens_generated, 50u);
  EXPECT_EQ(stats.queued, 0u);
}

TEST(BatchScheduler, SmallBatchStillMatchesAndRespectsMaxRunning) {
  ToyLanguageModel model(12, 22);
  const auto requests = mixed_requests(model, nullptr);
  BatchScheduler scheduler({/*max_running=*/3, /*max_queued=*/64});
  std::vector<std::future<GenerationResult>> futures;
  std::vector<GenerationRequest> used;
  for (auto r : requests) {
    r.config.stop_strings.clear();
    used.push_back(r);
    futures.push_back(std::move(*scheduler.submit(r)));
  }
  for (size_t i = 0; i < futures.size(); ++i) expect_same(futures[i].get(), generate(used[i]));
  EXPECT_LE(model.widest_batch.load(), 3u);
}

TEST(BatchScheduler, FullQueueIsRefused) {
  ToyLanguageModel model(12, 23);
  Gate gate;
  BatchScheduler scheduler({/*max_running=*/1, /*max_queued=*/2});
  GenerationRequest blocker;
  blocker.model = &model;
  blocker.prompt = ids_prompt({1});
  blocker.config.max_new_tokens = 2;
  blocker.on_token = [&](int32_t) { return gate.wait(); };
  auto first = scheduler.submit(blocker);
  ASSERT_TRUE(first.has_value());
  gate.wait_entered();  // the worker holds the first request now
  GenerationRequest plain = blocker;
  plain.on_token = nullptr;
  auto a = scheduler.submit(plain);
  auto b = scheduler.submit(plain);
  auto c = scheduler.submit(plain);
  EXPECT_TRUE(a.has_value());
  EXPECT_TRUE(b.has_value());
  EXPECT_FALSE(c.has_value());
  EXPECT_EQ(scheduler.stats().queued, 2u);
  gate.release();
  EXPECT_EQ(first->get().sequences[0].tokens.size(), 2u);
  EXPECT_EQ(a->get().sequences[0].tokens.size(), 2u);
  EXPECT_EQ(b->get().sequences[0].tokens.size(), 2u);
}

TEST(BatchScheduler, CancelAndOnTokenFalseRemoveASequence) {
  ToyLanguageModel model(12, 24);
  BatchScheduler scheduler({});
  std::atomic<bool> cancel{false};
  GenerationRequest r;
  r.model = &model;
  r.prompt = ids_prompt({2, 3});
  r.config.max_new_tokens = 40;
  r.cancel = &cancel;
  int count = 0;
  r.on_token = [&](int32_t) {
    if (++count == 5) cancel = true;
    return true;
  };
  GenerationRequest other = r;
  other.cancel = nullptr;
  int other_count = 0;
  other.on_token = [&](int32_t) { return ++other_count < 7; };
  GenerationRequest bystander = r;
  bystander.cancel = nullptr;
  bystander.on_token = nullptr;
  auto f1 = scheduler.submit(r);
  auto f2 = scheduler.submit(other);
  auto f3 = scheduler.submit(bystander);
  const auto r1 = f1->get(), r2 = f2->get(), r3 = f3->get();
  EXPECT_EQ(r1.sequences[0].finish_reason, FinishReason::cancelled);
  EXPECT_EQ(r1.sequences[0].tokens.size(), 5u);
  EXPECT_EQ(r2.sequences[0].finish_reason, FinishReason::cancelled);
  EXPECT_EQ(r2.sequences[0].tokens.size(), 7u);
  EXPECT_EQ(r3.sequences[0].finish_reason, FinishReason::length);
  EXPECT_EQ(r3.sequences[0].tokens.size(), 40u);
}

TEST(BatchScheduler, ErrorsGoToTheFuture) {
  ToyLanguageModel model(12, 25);
  BatchScheduler scheduler({});
  GenerationRequest bad;
  bad.model = &model;
  bad.prompt = ids_prompt({1});
  bad.config.num_beams = 0;
  auto f = scheduler.submit(bad);
  ASSERT_TRUE(f.has_value());
  try {
    f->get();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    EXPECT_NE(std::string(e.what()).find("num_beams"), std::string::npos);
  }
  bad.config.num_beams = 2;
  bad.config.max_length = 1;  // the input is not shorter than max_length
  EXPECT_THROW(scheduler.submit(bad)->get(), Error);
  GenerationRequest good = bad;
  good.config = GenerationConfig{};
  EXPECT_EQ(scheduler.submit(good)->get().sequences[0].tokens.size(), 19u);
}

TEST(BatchScheduler, DestructorCancelsRunningRequests) {
  ToyLanguageModel model(12, 26, 100000);
  std::optional<std::future<GenerationResult>> f;
  Gate started;
  bool once = false;  // outlives the scheduler, whose worker calls on_token until it stops
  {
    BatchScheduler scheduler({});
    GenerationRequest r;
    r.model = &model;
    r.prompt = ids_prompt({1});
    r.config.max_new_tokens = 90000;
    r.on_token = [&](int32_t) {
      if (!once) {
        once = true;
        std::lock_guard<std::mutex> lock(started.m);
        started.entered = true;
        started.cv.notify_all();
      }
      return true;
    };
    f = scheduler.submit(r);
    started.wait_entered();
  }
  const auto result = f->get();
  EXPECT_EQ(result.sequences[0].finish_reason, FinishReason::cancelled);
  EXPECT_LT(result.sequences[0].tokens.size(), 90000u);
}

}  // namespace
}  // namespace mmfuse
