// Server routes against the CLI: /v1/embeddings equals `mmfuse embed`, /v1/classify
// equals `mmfuse classify`, base64 encoding, service routes, OpenAPI coverage.
#include <cstdio>
#include <set>
#include <thread>

#include "server/metrics.h"
#include "server_test_util.h"

namespace mmfuse::test {

namespace {

nlohmann::json run_cli(const std::string& args) {
  const std::string cmd = std::string(MMFUSE_BINARY) + " " + args + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while (p && (n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  if (p) pclose(p);
  return nlohmann::json::parse(out, nullptr, false);
}

const char* kImage = "images/img0_photo_640x480_rgb.jpg";
const char* kImage2 = "images/img7_palette_256x256_P.png";

}  // namespace

TEST(ServerApi, EmbeddingsEqualCliEmbed) {
  RunningServer s(tiny_config());
  auto c = s.client();
  nlohmann::json body = {
      {"model", "tiny"},
      {"input",
       {"a photo of a cat",
        {{"type", "text"}, {"text", "two dogs on a sofa"}},
        {{"type", "image_url"}, {"image_url", {{"url", data_url(fixture(kImage), "image/jpeg")}}}},
        {{"type", "image_url"},
         {"image_url", {{"url", data_url(fixture(kImage2), "image/png")}}}}}}};
  auto r = c.Post("/v1/embeddings", body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = json_of(r);
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["model"], "tiny");
  ASSERT_EQ(j["data"].size(), 4u);
  EXPECT_GT(j["usage"]["prompt_tokens"].get<int>(), 4);
  EXPECT_EQ(j["usage"]["prompt_tokens"], j["usage"]["total_tokens"]);

  auto cli =
      run_cli("embed --model " + tiny_clip() +
              " --threads 1 --text 'a photo of a cat' --text 'two dogs on a sofa'" + " --image " +
              fixture(kImage).string() + " --image " + fixture(kImage2).string());
  ASSERT_TRUE(cli.is_object());
  ASSERT_EQ(cli["data"].size(), 4u);
  double worst = 0;
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(j["data"][i]["index"], i);
    EXPECT_EQ(j["data"][i]["object"], "embedding");
    const auto a = j["data"][i]["embedding"].get<std::vector<float>>();
    const auto b = cli["data"][i]["embedding"].get<std::vector<float>>();
    ASSERT_EQ(a.size(), b.size());
    worst = std::max(worst, max_abs_diff(a, b));
  }
  std::printf("server vs CLI embed: max |diff| = %.3g\n", worst);
  EXPECT_LE(worst, 1e-6);

  // Base64: little-endian float32 bytes of the same vectors.
  body["encoding_format"] = "base64";
  auto rb = c.Post("/v1/embeddings", body.dump(), "application/json");
  ASSERT_TRUE(rb);
  ASSERT_EQ(rb->status, 200) << rb->body;
  auto jb = json_of(rb);
  for (size_t i = 0; i < 4; ++i) {
    const auto bytes = server::base64_decode(jb["data"][i]["embedding"].get<std::string>(), "test");
    std::vector<float> v(bytes.size() / 4);
    std::memcpy(v.data(), bytes.data(), bytes.size());
    EXPECT_EQ(v, j["data"][i]["embedding"].get<std::vector<float>>());
  }

  // A plain string input and normalize=false (the projected features, as `embed --raw`).
  auto rr = c.Post("/v1/embeddings", R"({"input":"a photo of a cat","normalize":false})",
                   "application/json");
  ASSERT_TRUE(rr);
  ASSERT_EQ(rr->status, 200) << rr->body;
  auto raw =
      run_cli("embed --raw --model " + tiny_clip() + " --threads 1 --text 'a photo of a cat'");
  EXPECT_LE(max_abs_diff(json_of(rr)["data"][0]["embedding"].get<std::vector<float>>(),
                         raw["data"][0]["embedding"].get<std::vector<float>>()),
            1e-6);
}

TEST(ServerApi, ClassifyEqualsCli) {
  RunningServer s(tiny_config());
  auto c = s.client();
  nlohmann::json body = {{"image", data_url(fixture(kImage), "image/jpeg")},
                         {"labels", {"cat", "dog", "car"}},
                         {"template", "a photo of a {}."}};
  auto r = c.Post("/v1/classify", body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = json_of(r);
  auto cli = run_cli("classify --model " + tiny_clip() + " --threads 1 --image " +
                     fixture(kImage).string() + " --label cat --label dog --label car");
  ASSERT_EQ(j["labels"].size(), 3u);
  double sum = 0;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(j["labels"][i]["label"], cli["labels"][i]["label"]);
    EXPECT_NEAR(j["labels"][i]["score"].get<double>(), cli["labels"][i]["score"].get<double>(),
                1e-6);
    sum += j["labels"][i]["score"].get<double>();
  }
  EXPECT_NEAR(sum, 1.0, 1e-5);
  // Plain base64 is accepted too; errors name the field.
  body["image"] =
      server::base64_encode(file_text(fixture(kImage)).data(), file_text(fixture(kImage)).size());
  auto r2 = c.Post("/v1/classify", body.dump(), "application/json");
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->status, 200) << r2->body;
  body["template"] = "a photo without the label slot";  // no "{}"
  auto r3 = c.Post("/v1/classify", body.dump(), "application/json");
  ASSERT_TRUE(r3);
  EXPECT_EQ(r3->status, 400);
  EXPECT_EQ(error_type(r3), "bad_request");
  body["template"] = "{}";
  body["labels"] = nlohmann::json::array();
  auto r4 = c.Post("/v1/classify", body.dump(), "application/json");
  ASSERT_TRUE(r4);
  EXPECT_EQ(r4->status, 400);
  EXPECT_NE(json_of(r4)["error"]["message"].get<std::string>().find("labels"), std::string::npos);
}

// Without a template, /v1/classify and `mmfuse classify` both use the model's
// own: Chinese-CLIP's 一张{}的照片。, not CLIP's English one.
TEST(ServerApi, ClassifyDefaultTemplateIsTheModelsOwnAsInTheCli) {
  auto cfg = tiny_config();
  const std::string model = fixture("chinese_clip/models/chinese-clip-tiny-p16").string();
  cfg.models = {{"zh", model}};
  RunningServer s(cfg);
  auto c = s.client();
  nlohmann::json body = {{"image", data_url(fixture(kImage), "image/jpeg")},
                         {"labels", {"猫", "狗", "汽车"}}};
  auto plain = json_of(c.Post("/v1/classify", body.dump(), "application/json"));
  body["template"] = "一张{}的照片。";
  auto own = json_of(c.Post("/v1/classify", body.dump(), "application/json"));
  body["template"] = "a photo of a {}.";
  auto english = json_of(c.Post("/v1/classify", body.dump(), "application/json"));
  auto cli = run_cli("classify --model " + model + " --threads 1 --image " +
                     fixture(kImage).string() + " --label 猫 --label 狗 --label 汽车");
  ASSERT_EQ(plain["labels"].size(), 3u) << plain.dump();
  ASSERT_EQ(cli["labels"].size(), 3u);
  double english_gap = 0;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(plain["labels"][i], own["labels"][i]);
    EXPECT_EQ(plain["labels"][i]["label"], cli["labels"][i]["label"]);
    EXPECT_NEAR(plain["labels"][i]["score"].get<double>(), cli["labels"][i]["score"].get<double>(),
                1e-6);
    for (size_t k = 0; k < 3; ++k)
      if (english["labels"][k]["label"] == plain["labels"][i]["label"])
        english_gap = std::max(english_gap, std::abs(english["labels"][k]["score"].get<double>() -
                                                     plain["labels"][i]["score"].get<double>()));
  }
  EXPECT_GT(english_gap, 1e-6)
      << "the English template scored the same: the test cannot tell them apart";
}

TEST(ServerApi, ServiceRoutes) {
  RunningServer s(tiny_config());
  auto c = s.client();
  auto h = c.Get("/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  auto ready = c.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  auto info = json_of(c.Get("/info"));
  EXPECT_EQ(info["models"], nlohmann::json::array({"tiny"}));
  EXPECT_EQ(info["limits"]["max_batch"], 32);
  EXPECT_EQ(info["limits"]["max_image_pixels"], 40000000);
  EXPECT_EQ(info["features"]["auth"], false);
  EXPECT_EQ(info["features"]["index"], false);
  auto models = json_of(c.Get("/v1/models"));
  ASSERT_EQ(models["data"].size(), 1u);
  EXPECT_EQ(models["data"][0]["id"], "tiny");
  EXPECT_EQ(models["data"][0]["dim"], 16);
  c.Post("/v1/embeddings", R"({"input":"x"})", "application/json");
  // A request is counted once its response is written (the logger runs after
  // it), so a scrape on another connection may briefly miss it.
  auto m = c.Get("/metrics");
  for (int i = 0; i < 200 && m &&
                  m->body.find("route=\"/v1/embeddings\",status=\"200\"} 1") == std::string::npos;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    m = c.Get("/metrics");
  }
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status, 200);
  EXPECT_NE(m->get_header_value("Content-Type").find("text/plain"), std::string::npos);
  for (const char* want :
       {"mmfuse_http_requests_total{method=\"POST\",route=\"/v1/embeddings\",status=\"200\"} 1",
        "mmfuse_http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\"",
        "mmfuse_batch_size_bucket{model=\"tiny\"", "mmfuse_queue_depth{model=\"tiny\"} 0",
        "mmfuse_inference_seconds_count{model=\"tiny\",kind=\"text\"} 1"})
    EXPECT_NE(m->body.find(want), std::string::npos) << want << "\n" << m->body;
}

TEST(ServerApi, ReadyzIs503UntilModelsLoad) {
  // A model folder whose weights are corrupt: the socket serves at once, /readyz
  // says 503 (failed), API routes say 503, /healthz stays 200.
  const auto dir =
      std::filesystem::temp_directory_path() / ("mmfuse_srv_bad_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::copy(tiny_clip(), dir);
  { std::ofstream(dir / "model.safetensors", std::ios::trunc) << "garbage"; }
  auto cfg = tiny_config();
  cfg.models[0].dir = dir.string();
  RunningServer s(cfg, false);
  auto c = s.client();
  EXPECT_EQ(c.Get("/healthz")->status, 200);
  EXPECT_FALSE(s.srv->wait_ready(std::chrono::seconds(20)));
  EXPECT_NE(s.srv->load_error().find("model.safetensors"), std::string::npos)
      << s.srv->load_error();
  auto r = c.Get("/readyz");
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->get_header_value("Retry-After"), "1");
  auto e = c.Post("/v1/embeddings", R"({"input":"x"})", "application/json");
  EXPECT_EQ(e->status, 503);
  EXPECT_EQ(error_type(e), "unavailable");
  std::filesystem::remove_all(dir);
}

TEST(ServerApi, OpenApiDocumentsEveryRoute) {
  RunningServer s(tiny_config());
  auto r = s.client().Get("/openapi.json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  auto doc = json_of(r);
  ASSERT_TRUE(doc.is_object()) << "openapi.json does not parse";
  EXPECT_EQ(doc["openapi"], "3.1.0");
  // The served document is the one in docs/api (embedded at build time).
  EXPECT_TRUE(doc == nlohmann::json::parse(file_text(fixture("../../docs/api/openapi.json"))))
      << "the served OpenAPI document differs from docs/api/openapi.json (re-run cmake)";
  const auto routes = s.srv->routes();
  EXPECT_GE(routes.size(), 12u);
  for (const auto& route : routes) {
    const auto space = route.find(' ');
    std::string method = route.substr(0, space), path = route.substr(space + 1);
    for (auto& ch : method) ch = static_cast<char>(std::tolower(ch));
    EXPECT_TRUE(doc["paths"].contains(path) && doc["paths"][path].contains(method))
        << route << " is served but not in docs/api/openapi.json";
  }
}

}  // namespace mmfuse::test
