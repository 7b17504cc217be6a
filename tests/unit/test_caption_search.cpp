// Captions in the index catalogue and hybrid text search: the FTS5 query
// words, reciprocal rank fusion, caption rows written / replaced / removed with
// their items, an older catalogue without caption tables (read as before,
// migrated by the next writer), and on a small hand-made index (tiny CLIP, a
// stand-in caption function) a caption word lifting an item the vectors rank
// last into the results, captions added to items indexed without them, sync
// captioning new files, and a caption failure failing only its file.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include "index/caption_search.h"
#include "index/catalog.h"
#include "index/indexer.h"
#include "index/searcher.h"
#include "mmfuse/error.h"
#include "vision/image_encode.h"

namespace fs = std::filesystem;

namespace mmfuse {
namespace {

const std::string kModel = std::string(MMFUSE_FIXTURES) + "/clip/models/clip-tiny-quickgelu-p32";

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("mmfuse_caption_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  static int& counter() {
    static int n = 0;
    return n;
  }
};

void write_png(const fs::path& path, int seed) {
  const int w = 40 + seed, h = 32;
  std::vector<uint8_t> rgb(static_cast<size_t>(w * h * 3));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c)
        rgb[static_cast<size_t>((y * w + x) * 3 + c)] = static_cast<uint8_t>(
            (x * (seed + 1) * (c + 2) + y * (7 - seed) * (c + 1) + 50 * seed) % 256);
  std::ofstream(path, std::ios::binary) << encode_png(rgb.data(), w, h, 3, 8);
}

ItemRecord image_item(const std::string& path, const std::string& caption) {
  ItemRecord r;
  r.type = "image";
  r.path = path;
  r.hash = "h" + path;
  r.size = 1;
  r.caption = caption;
  return r;
}

TEST(CaptionSearch, QueryTermsDropFunctionWordsAndQuote) {
  EXPECT_EQ(caption_query_terms("A photo of a red Bus!"), "\"red\" OR \"bus\"");
  EXPECT_EQ(caption_query_terms("bus, bus; BUS"), "\"bus\"");
  EXPECT_EQ(caption_query_terms("\"quoted\" AND (x) NEAR y*"), "\"quoted\" OR \"near\"");
  EXPECT_EQ(caption_query_terms("the a of"), "");
  EXPECT_EQ(caption_query_terms("café 2024"), "\"café\" OR \"2024\"");
}

TEST(CaptionSearch, ReciprocalRankFusion) {
  // 3: 1/63 + 1/61; 1: 1/61; 2 and 4: 1/62 each, 2 seen first.
  const auto fused = reciprocal_rank_fusion({{1, 2, 3}, {3, 4}});
  ASSERT_EQ(fused.size(), 4u);
  EXPECT_EQ(fused[0].first, 3);
  EXPECT_DOUBLE_EQ(fused[0].second, 1.0 / 63 + 1.0 / 61);
  EXPECT_EQ(fused[1].first, 1);
  EXPECT_EQ(fused[2].first, 2);
  EXPECT_EQ(fused[3].first, 4);
  EXPECT_DOUBLE_EQ(fused[3].second, 1.0 / 62);
  EXPECT_TRUE(reciprocal_rank_fusion({}).empty());
}

TEST(CaptionSearch, CatalogueStoresMatchesAndForgetsCaptions) {
  TempDir tmp;
  Catalog cat(tmp.path / "catalog.sqlite", true);
  cat.create_schema();
  EXPECT_FALSE(cat.has_captions());
  const int64_t bus = cat.insert_item(image_item("/p/bus.jpg", "A red bus parked on a street"));
  const int64_t dogs = cat.insert_item(image_item("/p/dogs.jpg", "Two dogs playing in the snow"));
  const int64_t plain = cat.insert_item(image_item("/p/plain.jpg", ""));
  EXPECT_TRUE(cat.has_captions());
  EXPECT_EQ(cat.item_by_id(bus)->caption, "A red bus parked on a street");
  EXPECT_EQ(cat.item_by_path("image", "/p/dogs.jpg")->caption, "Two dogs playing in the snow");
  EXPECT_EQ(cat.item_by_id(plain)->caption, "");
  EXPECT_EQ(cat.items("image").size(), 3u);

  EXPECT_EQ(cat.caption_matches("parking", 10), std::vector<int64_t>{bus});  // porter stemming
  EXPECT_EQ(cat.caption_matches("a dog", 10), std::vector<int64_t>{dogs});
  EXPECT_EQ(cat.caption_matches("red dog", 10).size(), 2u);
  EXPECT_EQ(cat.caption_matches("red dog", 1).size(), 1u);
  EXPECT_TRUE(cat.caption_matches("the of", 10).empty());
  EXPECT_TRUE(cat.caption_matches("giraffe", 10).empty());

  cat.set_caption(bus, "A yellow taxi");  // replaced: the old words no longer match
  EXPECT_TRUE(cat.caption_matches("bus", 10).empty());
  EXPECT_EQ(cat.caption_matches("taxi", 10), std::vector<int64_t>{bus});
  cat.set_caption(plain, "a bus after all");
  EXPECT_EQ(cat.caption_matches("bus", 10), std::vector<int64_t>{plain});
  cat.delete_item(plain);  // the caption goes with its item
  EXPECT_TRUE(cat.caption_matches("bus", 10).empty());
  cat.set_caption(dogs, "");
  EXPECT_TRUE(cat.caption_matches("dogs", 10).empty());
  SqlStatement rows(cat.db(), "SELECT count(*) FROM captions");
  rows.step();
  EXPECT_EQ(rows.i64(0), 1);
}

TEST(CaptionSearch, OlderCatalogueReadsAsBeforeAndIsMigratedByAWriter) {
  TempDir tmp;
  const fs::path file = tmp.path / "catalog.sqlite";
  {  // the schema as it was before captions
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
    sql_exec(db,
             "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
             "CREATE TABLE items(id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, path "
             "TEXT NOT NULL, text TEXT, hash TEXT NOT NULL, size INTEGER NOT NULL, mtime INTEGER "
             "NOT NULL, added_at TEXT NOT NULL, UNIQUE(type, path));"
             "CREATE TABLE embeddings(model TEXT NOT NULL, hash TEXT NOT NULL, vector BLOB NOT "
             "NULL, PRIMARY KEY(model, hash)) WITHOUT ROWID;"
             "INSERT INTO items(type, path, text, hash, size, mtime, added_at) VALUES('image', "
             "'/p/a.jpg', '', 'ha', 1, 0, '2024-01-01T00:00:00Z');");
    sqlite3_close(db);
  }
  {
    Catalog reader(file, false);
    EXPECT_TRUE(reader.has_schema());
    EXPECT_FALSE(reader.has_captions());
    EXPECT_EQ(reader.item_by_path("image", "/p/a.jpg")->caption, "");
    EXPECT_TRUE(reader.caption_matches("anything", 10).empty());
  }
  Catalog writer(file, true);
  writer.create_schema();
  const auto a = writer.item_by_path("image", "/p/a.jpg");
  ASSERT_TRUE(a.has_value());
  writer.set_caption(a->id, "an old photo of a lighthouse");
  EXPECT_EQ(writer.caption_matches("lighthouse", 10), std::vector<int64_t>{a->id});
  Catalog reader(file, false);
  EXPECT_EQ(reader.item_by_id(a->id)->caption, "an old photo of a lighthouse");
}

class CaptionIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    photos_ = tmp_.path / "photos";
    fs::create_directories(photos_);
    for (int i = 0; i < 6; ++i) write_png(photos_ / ("img" + std::to_string(i) + ".png"), i);
  }
  IndexOptions options(std::function<std::string(const std::string&, const Image&)> caption = {}) {
    IndexOptions o;
    o.model_dir = kModel;
    o.progress = false;
    o.pool = std::make_shared<ThreadPool>(2);
    o.caption = std::move(caption);
    return o;
  }
  std::vector<SearchResult> search(const fs::path& index, const std::string& text, size_t k,
                                   const std::string& type = "image") {
    SearchRequest r;
    r.text = text;
    r.top_k = k;
    r.type = type;
    r.pool = std::make_shared<ThreadPool>(2);
    return search_index(index.string(), r);
  }
  TempDir tmp_;
  fs::path photos_;
};

TEST_F(CaptionIndexTest, CaptionWordLiftsAnItemTheVectorsRankLast) {
  const fs::path plain = tmp_.path / "plain.idx", captioned = tmp_.path / "captioned.idx";
  ASSERT_EQ(Indexer(plain, options()).add_files({photos_.string()}).added, 6u);
  const auto by_vector = search(plain, "a zebra", 6);
  ASSERT_EQ(by_vector.size(), 6u);
  for (const auto& r : by_vector) {
    EXPECT_EQ(r.fused_score, 0.0);  // no captions: results exactly as before
    EXPECT_EQ(r.item.caption, "");
  }
  const std::string target = by_vector.back().item.path;  // the vectors' last choice
  std::map<std::string, float> cosine;
  for (const auto& r : by_vector) cosine[r.item.path] = r.score;

  size_t calls = 0;
  auto caption = [&](const std::string& path, const Image& image) {
    ++calls;
    EXPECT_GT(image.width, 0);
    return path == target ? std::string("A zebra grazing near a fence")
                          : "Colourful stripes number " + fs::path(path).stem().string();
  };
  const IndexReport report = Indexer(captioned, options(caption)).add_files({photos_.string()});
  EXPECT_EQ(report.added, 6u);
  EXPECT_EQ(report.captioned, 6u);
  EXPECT_EQ(calls, 6u);

  const auto hits = search(captioned, "a zebra", 3);
  ASSERT_EQ(hits.size(), 3u);
  // In both rankings (vector rank 6, keyword rank 1) beats any vector-only item.
  EXPECT_EQ(hits[0].item.path, target);
  EXPECT_EQ(hits[0].item.caption, "A zebra grazing near a fence");
  EXPECT_DOUBLE_EQ(hits[0].fused_score, 1.0 / 61 + 1.0 / 66);
  for (size_t i = 0; i < hits.size(); ++i) {
    EXPECT_NEAR(hits[i].score, cosine[hits[i].item.path], 1e-5) << hits[i].item.path;
    EXPECT_FALSE(hits[i].item.caption.empty());
    if (i > 0) {
      EXPECT_GE(hits[i - 1].fused_score, hits[i].fused_score);
    }
  }
  EXPECT_EQ(hits[1].item.path, by_vector[0].item.path);
  EXPECT_EQ(hits[2].item.path, by_vector[1].item.path);

  // With top_k 1 the vectors alone never reach the target; the keyword list does.
  const auto top1 = search(captioned, "zebra", 1);
  ASSERT_EQ(top1.size(), 1u);
  EXPECT_EQ(top1[0].item.path, target);
  // Text items only: captions play no part.
  EXPECT_TRUE(search(captioned, "zebra", 3, "text").empty());
  // A min_score above the target's cosine drops it even though its caption matches.
  SearchRequest r;
  r.text = "zebra";
  r.top_k = 6;
  r.min_score = cosine[target] + 1e-4f;
  r.pool = std::make_shared<ThreadPool>(1);
  for (const auto& hit : search_index(captioned.string(), r)) {
    EXPECT_NE(hit.item.path, target);
  }
}

TEST_F(CaptionIndexTest, EarlierItemsGetCaptionsAndSyncCaptionsNewFiles) {
  const fs::path index = tmp_.path / "idx";
  ASSERT_EQ(Indexer(index, options()).add_files({photos_.string()}).added, 6u);
  auto caption = [](const std::string& path, const Image&) {
    return "caption of " + fs::path(path).stem().string();
  };
  IndexReport again = Indexer(index, options(caption)).add_files({photos_.string()});
  EXPECT_EQ(again.added, 0u);
  EXPECT_EQ(again.skipped, 6u);
  EXPECT_EQ(again.captioned, 6u);
  IndexReport third = Indexer(index, options(caption)).add_files({photos_.string()});
  EXPECT_EQ(third.captioned, 0u);  // nothing left to caption
  EXPECT_EQ(third.skipped, 6u);

  write_png(photos_ / "img_new.png", 9);
  fs::remove(photos_ / "img0.png");
  IndexReport sync = Indexer(index, options(caption)).sync({});
  EXPECT_EQ(sync.removed, 1u);
  EXPECT_EQ(sync.added, 1u);
  EXPECT_EQ(sync.captioned, 1u);
  auto store = IndexStore::open_read(index);
  const auto items = store->catalog().items("image");
  ASSERT_EQ(items.size(), 6u);
  for (const auto& item : items)
    EXPECT_EQ(item.caption, "caption of " + fs::path(item.path).stem().string());
  EXPECT_EQ(store->catalog().caption_matches("new", 10).size(), 1u);
}

TEST_F(CaptionIndexTest, CaptionFailureFailsOnlyItsFile) {
  const fs::path index = tmp_.path / "idx";
  auto caption = [](const std::string& path, const Image&) -> std::string {
    if (fs::path(path).stem() == "img3") throw_error(ErrorKind::bad_input, "no caption today");
    return "fine";
  };
  const IndexReport report = Indexer(index, options(caption)).add_files({photos_.string()});
  EXPECT_EQ(report.added, 5u);
  EXPECT_EQ(report.failed, 1u);
  ASSERT_EQ(report.failures.size(), 1u);
  EXPECT_NE(report.failures[0].error.find("img3.png"), std::string::npos);
  EXPECT_NE(report.failures[0].error.find("no caption today"), std::string::npos);
}

}  // namespace
}  // namespace mmfuse
