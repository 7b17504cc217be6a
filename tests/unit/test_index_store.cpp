// Index folders end to end with the tiny CLIP fixture: add (corrupt and
// unreadable files reported and skipped, re-runs idempotent), search equals a
// brute-force ranking of the model's embeddings, model mismatch refused, sync,
// remove, texts, and a writer killed at random moments and at every step of
// the commit protocol leaves an index that opens consistent.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "core/thread_pool.h"
#include "index/indexer.h"
#include "index/searcher.h"
#include "mmfuse/error.h"
#include "models/clip.h"
#include "tools/ann_bench.h"
#include "vision/image.h"

namespace fs = std::filesystem;

namespace mmfuse {
namespace {

const std::string kModel = std::string(MMFUSE_FIXTURES) + "/clip/models/clip-tiny-quickgelu-p32";
const std::string kOtherModel = std::string(MMFUSE_FIXTURES) + "/clip/models/clip-tiny-gelu-p16";

// A 24-bit BMP of w x h pixels with a pattern that depends on `seed`.
void write_bmp(const fs::path& path, int w, int h, uint32_t seed) {
  const int row = (w * 3 + 3) & ~3;
  const uint32_t data_size = static_cast<uint32_t>(row * h), file_size = 54 + data_size;
  std::vector<uint8_t> b(file_size, 0);
  auto put32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) b[at + static_cast<size_t>(i)] = static_cast<uint8_t>(v >> (8 * i));
  };
  b[0] = 'B';
  b[1] = 'M';
  put32(2, file_size);
  put32(10, 54);
  put32(14, 40);
  put32(18, static_cast<uint32_t>(w));
  put32(22, static_cast<uint32_t>(h));
  b[26] = 1;
  b[28] = 24;
  put32(34, data_size);
  std::mt19937 rng(seed);
  const int a = static_cast<int>(rng() % 7) + 1, c = static_cast<int>(rng() % 5) + 1,
            off = static_cast<int>(rng() % 256);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &b[54 + static_cast<size_t>(y * row + x * 3)];
      p[0] = static_cast<uint8_t>(x * a + off);
      p[1] = static_cast<uint8_t>(y * c + off * 3);
      p[2] = static_cast<uint8_t>((x ^ y) * (a + c));
    }
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(b.data()), static_cast<long>(b.size()));
}

class IndexStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("mmfuse_index_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "photos" / "sub");
    for (int i = 0; i < 12; ++i)
      write_bmp(root_ / "photos" / (i % 3 ? "" : "sub") / ("img" + std::to_string(i) + ".bmp"), 48,
                40, 1000u + static_cast<uint32_t>(i));
  }
  void TearDown() override {
    ::chmod((root_ / "photos" / "locked.png").c_str(), 0644);
    fs::remove_all(root_);
  }
  IndexOptions options(const std::string& model = kModel) {
    IndexOptions o;
    o.model_dir = model;
    o.progress = false;
    o.batch = 5;
    o.pool = std::make_shared<ThreadPool>(2);
    return o;
  }
  std::string index_dir() const { return (root_ / "idx").string(); }
  fs::path root_;
};

TEST_F(IndexStoreTest, AddSkipsCorruptAndUnreadableAndIsIdempotent) {
  std::ofstream(root_ / "photos" / "broken.jpg") << "not a jpeg";
  fs::copy_file(std::string(MMFUSE_FIXTURES) + "/images/img0_photo_640x480_rgb.jpg",
                root_ / "photos" / "locked.png");
  ::chmod((root_ / "photos" / "locked.png").c_str(), 0);
  const bool root_user = ::geteuid() == 0;  // root reads anything
  std::ofstream(root_ / "photos" / "notes.txt") << "ignored: not an image extension";
  IndexReport r;
  {
    Indexer ix(index_dir(), options());
    r = ix.add_files({(root_ / "photos").string()});
  }
  EXPECT_EQ(r.added, root_user ? 13u : 12u);
  EXPECT_EQ(r.failed, root_user ? 1u : 2u);
  bool broken_named = false;
  for (const auto& f : r.failures)
    broken_named |=
        f.path.ends_with("broken.jpg") && f.error.find("broken.jpg") != std::string::npos;
  EXPECT_TRUE(broken_named);
  {
    Indexer ix(index_dir(), options(""));  // model taken from the folder
    IndexReport again = ix.add_files({(root_ / "photos").string()});
    EXPECT_EQ(again.added, 0u);
    EXPECT_EQ(again.skipped, r.added);
    EXPECT_EQ(again.failed, r.failed);
    EXPECT_EQ(ix.store().catalog().count("image"), r.added);
  }
  // A copy of indexed content at a new path is a duplicate: skipped.
  fs::copy_file(root_ / "photos" / "img1.bmp", root_ / "photos" / "copy.bmp");
  Indexer ix(index_dir(), options());
  IndexReport dup = ix.add_files({(root_ / "photos" / "copy.bmp").string()});
  EXPECT_EQ(dup.added, 0u);
  EXPECT_EQ(dup.skipped, 1u);
  EXPECT_THROW(ix.add_files({(root_ / "nowhere").string()}), Error);
}

TEST_F(IndexStoreTest, SearchEqualsBruteForceRanking) {
  std::vector<std::string> files = list_image_files({(root_ / "photos").string()});
  {
    Indexer ix(index_dir(), options());
    ix.add_files({(root_ / "photos").string()});
  }
  auto model = ClipModel::load(kModel);
  const size_t d = static_cast<size_t>(model->dim());
  std::vector<Image> images;
  for (const auto& f : files) images.push_back(decode_image_file(f));
  std::vector<float> emb = model->image_features(images);
  l2_normalize_rows(emb.data(), files.size(), d);
  for (const std::string query : {"a photo of a cat", "a red car"}) {
    std::vector<float> q = model->text_features(std::vector<std::string>{query});
    l2_normalize_rows(q.data(), 1, d);
    std::vector<std::pair<float, std::string>> truth;
    for (size_t i = 0; i < files.size(); ++i) {
      float dot = 0;
      for (size_t j = 0; j < d; ++j) dot += q[j] * emb[i * d + j];
      truth.push_back({dot, files[i]});
    }
    std::sort(truth.begin(), truth.end(), [](auto& a, auto& b) { return a.first > b.first; });
    SearchRequest req;
    req.text = query;
    req.top_k = 5;
    auto got = search_index(index_dir(), req);
    ASSERT_EQ(got.size(), 5u);
    for (size_t j = 0; j < 5; ++j) {
      EXPECT_EQ(got[j].item.path, truth[j].second) << query << " rank " << j;
      EXPECT_NEAR(got[j].score, truth[j].first, 1e-5);
    }
    req.min_score = truth[2].first - 1e-6f;
    EXPECT_EQ(search_index(index_dir(), req).size(), 3u);
  }
  // Image -> image: an indexed image finds itself first.
  SearchRequest req;
  req.image_path = files[3];
  req.top_k = 1;
  auto self = search_index(index_dir(), req);
  ASSERT_EQ(self.size(), 1u);
  EXPECT_EQ(self[0].item.path, files[3]);
  EXPECT_NEAR(self[0].score, 1.0f, 1e-5);
  // Another model is refused, for queries and for adds.
  req.model_dir = kOtherModel;
  EXPECT_THROW(search_index(index_dir(), req), Error);
  EXPECT_THROW(Indexer(index_dir(), options(kOtherModel)), Error);
}

TEST_F(IndexStoreTest, SyncRemoveAndTexts) {
  {
    Indexer ix(index_dir(), options());
    EXPECT_EQ(ix.add_files({(root_ / "photos").string()}).added, 12u);
  }
  fs::remove(root_ / "photos" / "img1.bmp");
  fs::rename(root_ / "photos" / "img2.bmp", root_ / "photos" / "moved.bmp");
  write_bmp(root_ / "photos" / "img4.bmp", 48, 40, 777);  // changed content
  write_bmp(root_ / "photos" / "new.bmp", 48, 40, 778);
  Indexer ix(index_dir(), options(""));
  IndexReport s = ix.sync({});
  EXPECT_EQ(s.removed, 2u);  // img1 deleted, img2 moved away
  EXPECT_EQ(s.added, 3u);    // moved.bmp, changed img4.bmp, new.bmp
  EXPECT_EQ(ix.store().catalog().count("image"), 12u);
  EXPECT_FALSE(
      ix.store().catalog().item_by_path("image", (root_ / "photos" / "img1.bmp").string()));

  IndexReport rm = ix.remove({(root_ / "photos" / "sub").string()});
  EXPECT_EQ(rm.removed, 4u);
  EXPECT_EQ(ix.store().catalog().count("image"), 8u);
  EXPECT_THROW(ix.remove({(root_ / "photos" / "sub").string()}), Error);

  std::ofstream(root_ / "caps.jsonl") << "{\"id\": \"sku-1\", \"text\": \"a red car\"}\n"
                                         "{\"id\": 2, \"text\": \"a photo of a cat\"}\n"
                                         "not json\n"
                                         "{\"id\": \"sku-3\", \"text\": \"a red car\"}\n";
  IndexReport t = ix.add_texts((root_ / "caps.jsonl").string());
  EXPECT_EQ(t.added, 2u);
  EXPECT_EQ(t.failed, 1u);
  EXPECT_EQ(t.skipped, 1u);  // same text as sku-1
  EXPECT_EQ(ix.store().vectors("text")->size(), 2u);
  EXPECT_EQ(ix.store().vectors("image")->size(), 8u);

  SearchRequest req;
  req.text = "a photo of a cat";
  req.type = "text";
  auto hits = search_index(index_dir(), req);
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].item.path, "2");
  EXPECT_EQ(hits[0].item.text, "a photo of a cat");
  req.type = "all";
  EXPECT_EQ(search_index(index_dir(), req).size(), 10u);
}

// HNSW removal: a few removals become tombstones (no rebuild); past 10% of the
// graph the commit rebuilds from the cached vectors. Either way a removed file
// never comes back from a search, and it can be added again.
TEST_F(IndexStoreTest, HnswStoreTombstonesThenRebuildsOnRemove) {
  IndexOptions o = options();
  o.kind = "hnsw";
  Indexer ix(index_dir(), o);
  ix.add_files({(root_ / "photos").string()});
  EXPECT_EQ(ix.store().built_kind("image"), "hnsw");
  const std::string img1 = (root_ / "photos" / "img1.bmp").string();
  SearchRequest req;
  req.image_path = img1;
  req.top_k = 20;
  auto returned = [&](const std::string& path) {
    for (const auto& h : search_index(index_dir(), req))
      if (h.item.path == path) return true;
    return false;
  };
  EXPECT_TRUE(returned(img1));

  ix.remove({img1});  // 1 of 12: a tombstone
  EXPECT_EQ(ix.store().vectors("image")->size(), 11u);
  EXPECT_EQ(ix.store().vectors("image")->tombstones(), 1u);
  EXPECT_EQ(IndexStore::open_read(index_dir())->vectors("image")->tombstones(), 1u);
  const auto hits = search_index(index_dir(), req);
  EXPECT_EQ(hits.size(), 11u);
  EXPECT_FALSE(returned(img1));

  // Two more (3 of 12): past the line, so the graph is rebuilt without them.
  ix.remove({(root_ / "photos" / "img2.bmp").string(), (root_ / "photos" / "img4.bmp").string()});
  EXPECT_EQ(ix.store().vectors("image")->size(), 9u);
  EXPECT_EQ(ix.store().vectors("image")->tombstones(), 0u);
  EXPECT_EQ(search_index(index_dir(), req).size(), 9u);

  ix.add_files({img1});
  EXPECT_TRUE(returned(img1));
}

// `mmfuse index bench --index DIR`: the folder's own cached embeddings, with
// `queries` of them held out, measured like the synthetic sets.
TEST_F(IndexStoreTest, BenchRunsOnTheFolderOwnEmbeddings) {
  for (int i = 12; i < 30; ++i)
    write_bmp(root_ / "photos" / ("more" + std::to_string(i) + ".bmp"), 48, 40,
              2000u + static_cast<uint32_t>(i));
  Indexer(index_dir(), options()).add_files({(root_ / "photos").string()});
  AnnBenchOptions b;
  b.data = "index";
  b.index_dir = index_dir();
  b.queries = 10;
  b.kinds = {"flat", "hnsw"};
  b.ef_search = {64};
  b.threads = 1;
  const auto r = run_ann_bench(b);
  EXPECT_EQ(r["vectors"], 20);
  EXPECT_EQ(r["dim"], IndexStore::open_read(index_dir())->settings().dim);
  ASSERT_EQ(r["results"].size(), 2u);
  EXPECT_EQ(r["results"][0]["recall_at_k"], 1.0);  // exact against exact
  b.queries = 25;                                  // 30 items cannot hold out 25 and keep 10
  EXPECT_THROW(run_ann_bench(b), Error);
}

// Opens the index as a reader and checks the catalogue and FAISS agree: same
// count per type, and every item's cached vector finds that item first.
void expect_consistent(const std::string& dir, size_t* count) {
  auto store = IndexStore::open_read(dir);
  const size_t d = static_cast<size_t>(store->settings().dim);
  const size_t n = store->catalog().count("image");
  const VectorIndex* vi = store->vectors("image");
  ASSERT_EQ(vi ? vi->size() : 0, n);
  std::vector<int64_t> ids;
  std::vector<float> vecs;
  store->catalog().item_vectors("image", store->settings().model_id, d, &ids, &vecs);
  ASSERT_EQ(ids.size(), n);
  for (size_t i = 0; i < n; ++i) {
    auto hits = vi->search(vecs.data() + i * d, 1, 1, 1);
    ASSERT_EQ(hits[0].size(), 1u);
    EXPECT_NEAR(hits[0][0].score, 1.0f, 1e-4);
  }
  *count = n;
}

int run_add(const std::string& dir, const fs::path& photos, const char* crash_at,
            int kill_after_ms) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (crash_at) ::setenv("MMFUSE_INDEX_CRASH_AT", crash_at, 1);
    const int null_fd = ::open("/dev/null", O_WRONLY);
    ::dup2(null_fd, 1);
    ::dup2(null_fd, 2);
    ::execl(MMFUSE_BINARY, MMFUSE_BINARY, "index", "add", "--index", dir.c_str(), "--model",
            kModel.c_str(), "--batch", "2", "--commit-every", "2", "--threads", "1", "--quiet",
            photos.c_str(), nullptr);
    ::_exit(127);
  }
  if (kill_after_ms >= 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(kill_after_ms));
    ::kill(pid, SIGKILL);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

TEST_F(IndexStoreTest, KillDuringAddLeavesConsistentIndex) {
  for (int i = 12; i < 40; ++i)
    write_bmp(root_ / "photos" / ("more" + std::to_string(i) + ".bmp"), 48, 40,
              static_cast<uint32_t>(i));
  const fs::path photos = root_ / "photos";
  size_t last = 0, count = 0;
  // Every step of the commit protocol, deterministically...
  for (const char* point : {"rows_written", "tmp_written", "files_renamed", "committed"}) {
    const int status = run_add(index_dir(), photos, point, -1);
    EXPECT_TRUE(WIFSIGNALED(status)) << point;
    expect_consistent(index_dir(), &count);
    EXPECT_GE(count, last) << point;
    last = count;
  }
  // ...then at random moments.
  std::mt19937 rng(12345);
  for (int round = 0; round < 8; ++round) {
    run_add(index_dir(), photos, nullptr, static_cast<int>(rng() % 400));
    expect_consistent(index_dir(), &count);
    EXPECT_GE(count, last);
    last = count;
  }
  const int status = run_add(index_dir(), photos, nullptr, -1);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  expect_consistent(index_dir(), &count);
  EXPECT_EQ(count, 40u);
}

}  // namespace
}  // namespace mmfuse
