// Retrieval routes: add texts, uploaded images and files under an import root,
// search by text and image, fetch an item's image, delete items.
#include "server_test_util.h"

namespace fs = std::filesystem;

namespace mmfuse::test {

TEST(ServerIndex, AddSearchDelete) {
  const fs::path tmp =
      fs::temp_directory_path() / ("mmfuse_srv_index_" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp / "photos");
  fs::create_directories(tmp / "private");
  fs::copy(fixture("images/img1_portrait_480x640_rgb.png"), tmp / "photos/a.png");
  fs::copy(fixture("images/img3_wide_100x37_rgb.png"), tmp / "photos/b.png");
  fs::copy(fixture("images/img3_wide_100x37_rgb.png"), tmp / "private/c.png");
  auto cfg = tiny_config();
  cfg.index_dir = (tmp / "idx").string();
  cfg.index_import_roots = {(tmp / "photos").string()};
  RunningServer s(cfg);
  auto c = s.client();
  EXPECT_EQ(json_of(c.Get("/info"))["features"]["index"], true);
  // Empty index: no results, not an error.
  auto empty = c.Post("/v1/search", R"({"text":"a cat"})", "application/json");
  ASSERT_EQ(empty->status, 200) << empty->body;
  EXPECT_TRUE(json_of(empty)["results"].empty());

  const std::string jpeg_url = data_url(fixture("images/img0_photo_640x480_rgb.jpg"), "image/jpeg");
  nlohmann::json add = {{"texts", {{{"id", "t1"}, {"text", "a red bicycle"}}, "a cat on a mat"}},
                        {"images", {{{"image", jpeg_url}}}},
                        {"paths", {(tmp / "photos").string()}}};
  auto r = c.Post("/v1/index/items", add.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  auto j = json_of(r);
  EXPECT_EQ(j["added"], 5);
  EXPECT_EQ(j["failed"], 0);
  EXPECT_EQ(j["count"], 5);

  // Re-adding is idempotent.
  auto again = json_of(c.Post("/v1/index/items", add.dump(), "application/json"));
  EXPECT_EQ(again["added"], 0);
  EXPECT_EQ(again["count"], 5);

  // Image query: the uploaded JPEG finds itself first.
  auto q = c.Post("/v1/search", nlohmann::json({{"image", jpeg_url}, {"top_k", 3}}).dump(),
                  "application/json");
  ASSERT_EQ(q->status, 200) << q->body;
  auto results = json_of(q)["results"];
  ASSERT_EQ(results.size(), 3u);
  EXPECT_NEAR(results[0]["score"].get<double>(), 1.0, 1e-5);
  EXPECT_NE(results[0]["path"].get<std::string>().find("uploads"), std::string::npos);
  // Its image is served back by id.
  auto content = c.Get(results[0]["url"].get<std::string>());
  ASSERT_EQ(content->status, 200);
  EXPECT_EQ(content->get_header_value("Content-Type"), "image/jpeg");
  EXPECT_EQ(content->body, file_text(fixture("images/img0_photo_640x480_rgb.jpg")));

  // Text search over text items.
  auto t = json_of(c.Post("/v1/search", R"({"text":"a red bicycle","type":"text","top_k":1})",
                          "application/json"));
  ASSERT_EQ(t["results"].size(), 1u);
  EXPECT_EQ(t["results"][0]["path"], "t1");
  EXPECT_EQ(t["results"][0]["text"], "a red bicycle");

  // Per-query HNSW beam / IVF cells: accepted (ignored by a flat index), checked.
  auto tuned =
      c.Post("/v1/search", R"({"text":"a red bicycle","type":"text","ef_search":512,"nprobe":4})",
             "application/json");
  EXPECT_EQ(tuned->status, 200) << tuned->body;
  auto bad_ef =
      c.Post("/v1/search", R"({"text":"a red bicycle","ef_search":0})", "application/json");
  EXPECT_EQ(bad_ef->status, 400);
  EXPECT_NE(bad_ef->body.find("ef_search"), std::string::npos);

  // Files outside the import roots are refused, before anything is written.
  auto denied = c.Post("/v1/index/items",
                       nlohmann::json({{"paths", {(tmp / "private/c.png").string()}}}).dump(),
                       "application/json");
  EXPECT_EQ(denied->status, 403);
  auto sneaky =
      c.Post("/v1/index/items",
             nlohmann::json({{"paths", {(tmp / "photos/../private/c.png").string()}}}).dump(),
             "application/json");
  EXPECT_EQ(sneaky->status, 403);
  auto bad =
      c.Post("/v1/index/items", R"({"texts":["ok"],"images":["data:image/png;base64,AAAA"]})",
             "application/json");
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(json_of(c.Post("/v1/search", R"({"text":"ok","type":"text","top_k":10})",
                           "application/json"))["results"]
                .size(),
            2u);  // "ok" was not added

  // Delete by id; a second delete is 404.
  const int64_t id = results[0]["id"].get<int64_t>();
  const std::string uploaded = results[0]["path"].get<std::string>();
  auto del = c.Delete("/v1/index/items/" + std::to_string(id));
  ASSERT_EQ(del->status, 200) << del->body;
  EXPECT_EQ(json_of(del)["deleted"], true);
  EXPECT_FALSE(fs::exists(uploaded));
  EXPECT_EQ(c.Delete("/v1/index/items/" + std::to_string(id))->status, 404);
  EXPECT_EQ(c.Delete("/v1/index/items/abc")->status, 400);
  EXPECT_EQ(c.Get("/v1/index/items/" + std::to_string(id) + "/content")->status, 404);
  auto after =
      json_of(c.Post("/v1/search", nlohmann::json({{"image", jpeg_url}, {"top_k", 10}}).dump(),
                     "application/json"));
  EXPECT_EQ(after["results"].size(), 2u);
  fs::remove_all(tmp);
}

}  // namespace mmfuse::test
