// POST /v1/search over an index with captions: the same hybrid results as the
// library's search_index (order, cosine, rrf), captions returned; image queries
// return captions without fusion.
#include "index/indexer.h"
#include "index/searcher.h"
#include "server_test_util.h"

namespace fs = std::filesystem;

namespace mmfuse::test {

TEST(ServerCaptionSearch, TextQueriesMatchCaptionsAsTheLibraryDoes) {
  const fs::path tmp =
      fs::temp_directory_path() / ("mmfuse_srv_caption_" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp / "photos");
  const char* images[] = {"img0_photo_640x480_rgb.jpg", "img1_portrait_480x640_rgb.png",
                          "img2_square_224x224_rgb.png", "img3_wide_100x37_rgb.png"};
  for (const char* name : images)
    fs::copy(fixture(std::string("images/") + name), tmp / "photos" / name);
  {
    IndexOptions o;
    o.model_dir = tiny_clip();
    o.progress = false;
    o.pool = std::make_shared<ThreadPool>(1);
    o.caption = [](const std::string& path, const Image&) {
      return path.find("img2") != std::string::npos ? std::string("a lighthouse on a cliff")
                                                    : std::string("a plain test pattern");
    };
    ASSERT_EQ(Indexer(tmp / "idx", o).add_files({(tmp / "photos").string()}).added, 4u);
  }
  SearchRequest request;
  request.text = "lighthouse";
  request.top_k = 3;
  request.pool = std::make_shared<ThreadPool>(1);
  const auto want = search_index((tmp / "idx").string(), request);
  ASSERT_EQ(want.size(), 3u);

  auto cfg = tiny_config();
  cfg.index_dir = (tmp / "idx").string();
  RunningServer s(cfg);
  auto c = s.client();
  auto r = c.Post("/v1/search", R"({"text":"lighthouse","top_k":3})", "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  const auto results = json_of(r)["results"];
  ASSERT_EQ(results.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(results[i]["path"], want[i].item.path) << i;
    EXPECT_EQ(results[i]["caption"], want[i].item.caption) << i;
    EXPECT_NEAR(results[i]["score"].get<double>(), want[i].score, 1e-5) << i;
    EXPECT_DOUBLE_EQ(results[i]["rrf"].get<double>(), want[i].fused_score) << i;
  }
  EXPECT_EQ(results[0]["caption"], "a lighthouse on a cliff");

  const std::string png = data_url(fixture("images/img2_square_224x224_rgb.png"), "image/png");
  auto q = json_of(c.Post("/v1/search", nlohmann::json({{"image", png}, {"top_k", 1}}).dump(),
                          "application/json"));
  ASSERT_EQ(q["results"].size(), 1u);
  EXPECT_EQ(q["results"][0]["caption"], "a lighthouse on a cliff");
  EXPECT_FALSE(q["results"][0].contains("rrf"));
  fs::remove_all(tmp);
}

}  // namespace mmfuse::test
