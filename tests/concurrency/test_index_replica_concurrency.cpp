// A read replica under concurrent searches while the writer commits and
// publishes generation after generation: every search sees one whole
// generation (its catalogue and its FAISS index agree, every hit is an item of
// it), generations only move forward, and the swaps race with nothing (the
// ThreadSanitizer job runs this).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <thread>

#include "index/index_store.h"
#include "server/index_replica.h"

namespace fs = std::filesystem;

namespace mmfuse::test {

TEST(ConcurrencyIndexReplica, SearchesSeeWholeGenerationsWhileTheWriterPublishes) {
  const fs::path dir =
      fs::temp_directory_path() / ("mmfuse_replica_conc_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  constexpr int kDim = 8, kGenerations = 12, kPerCommit = 5, kReaders = 3;
  auto w = IndexStore::open_write(dir, true);
  IndexSettings s;
  s.model_name = "none";
  s.model_path = "/none";
  s.model_id = "test-fingerprint";
  s.dim = kDim;
  s.kind = "flat";
  w->initialise(s);
  int next = 0;
  auto commit = [&] {
    ChangeSet c;
    for (int i = 0; i < kPerCommit; ++i, ++next) {
      ItemRecord item;
      item.type = "text";
      item.path = std::to_string(next);  // (GCC 12 -O3 warns on "t" + string: a false -Wrestrict)
      item.text = item.path;
      item.hash = item.path;
      item.added_at = "2026-12-07T00:00:00Z";
      c.inserts.push_back(item);
      float norm = 0;
      std::vector<float> v(kDim);
      for (int k = 0; k < kDim; ++k) norm += (v[k] = std::sin(float(next * kDim + k))) * v[k];
      for (float x : v) c.insert_vectors.push_back(x / std::sqrt(norm));
    }
    w->commit(c, 1);
    w->publish(true);
  };
  commit();

  server::IndexReplica replica(dir.string(), std::chrono::milliseconds(1));
  std::atomic<bool> done{false};
  std::atomic<int> failures{0}, searches{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r)
    readers.emplace_back([&, r] {
      int64_t last = 0;
      const std::vector<float> q(kDim, 1.0f / std::sqrt(float(kDim)));
      while (!done || searches < kReaders * 5) {
        auto store = replica.open();
        if (!store) continue;
        const size_t n = store->catalog().count("text");
        const VectorIndex* v = store->vectors("text");
        const bool whole = v && v->size() == n && n % kPerCommit == 0 &&
                           n == static_cast<size_t>(store->generation() * kPerCommit);
        bool hits_known = true;
        if (v) {
          const auto hits = v->search(q.data(), 1, 100, 1);
          for (const auto& hit : hits[0])
            hits_known = hits_known && store->catalog().item_by_id(hit.id).has_value();
        }
        if (!whole || !hits_known || store->generation() < last) ++failures;
        last = store->generation();
        ++searches;
        (void)r;
      }
    });
  for (int g = 1; g < kGenerations; ++g) commit();
  // The watcher reaches the last generation.
  for (int i = 0; i < 2000 && replica.generation() < kGenerations; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(replica.generation(), kGenerations);
  EXPECT_EQ(failures.load(), 0) << "of " << searches.load() << " searches";
  EXPECT_GT(searches.load(), 0);
  fs::remove_all(dir);
}

}  // namespace mmfuse::test
