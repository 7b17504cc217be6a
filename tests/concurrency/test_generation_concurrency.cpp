// Many threads submit to one BatchScheduler (and call generate() directly on
// the same model) at once: every request gets what generate() gives it alone.
// The ThreadSanitizer job runs these.
#include <gtest/gtest.h>

#include <thread>

#include "../unit/generation_test_doubles.h"
#include "generate/batch_scheduler.h"

namespace mmfuse {
namespace {

GenerationRequest request_number(const LanguageModel& model, int i) {
  GenerationRequest r;
  r.model = &model;
  r.prompt = test::ids_prompt({static_cast<int32_t>(1 + i % 9), static_cast<int32_t>(i % 4)});
  r.config.max_new_tokens = 5 + i % 11;
  r.config.eos_token_ids = {3};
  if (i % 3 == 1)
    r.config.do_sample = true, r.config.seed = static_cast<uint64_t>(i), r.config.top_k = 5;
  if (i % 3 == 2) r.config.do_sample = true, r.config.seed = 1, r.config.num_return_sequences = 2;
  if (i % 7 == 0) r.config.num_beams = 2;
  return r;
}

TEST(ConcurrencyGeneration, ThreadsSubmittingToOneSchedulerGetTheirOwnResults) {
  test::ToyLanguageModel model(12, 31);
  BatchScheduler scheduler({/*max_running=*/6, /*max_queued=*/256});
  constexpr int kThreads = 8, kPerThread = 6;
  std::atomic<int> mismatches{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < kPerThread; ++k) {
        const int i = t * kPerThread + k;
        const GenerationRequest r = request_number(model, i);
        auto f = scheduler.submit(r);
        if (!f) {
          ++refused;
          continue;
        }
        const GenerationResult batched = f->get();
        const GenerationResult alone = generate(r);  // concurrently with the worker
        bool same = batched.sequences.size() == alone.sequences.size();
        for (size_t s = 0; same && s < alone.sequences.size(); ++s)
          same = batched.sequences[s].tokens == alone.sequences[s].tokens &&
                 batched.sequences[s].finish_reason == alone.sequences[s].finish_reason;
        if (!same) ++mismatches;
        (void)scheduler.stats();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(refused.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(scheduler.stats().requests_completed, static_cast<uint64_t>(kThreads * kPerThread));
}

}  // namespace
}  // namespace mmfuse
