// The server under concurrent embed + classify + search + inspect requests:
// every answer equals the one the same request got alone, and every upload is
// recorded once. The ThreadSanitizer job of scripts/test.sh runs this.
#include <atomic>
#include <thread>

#include "../unit/server_test_util.h"

namespace fs = std::filesystem;

namespace mmfuse::test {
namespace {

// The newest file of a generated device's folder (`mmfuse demo` layout).
std::string newest(const fs::path& dir) {
  std::string best;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().string() > best) best = e.path().string();
  return best;
}

double max_abs_embeddings(const nlohmann::json& a, const nlohmann::json& b) {
  if (!a.contains("data") || !b.contains("data") || a["data"].size() != b["data"].size())
    return 1e30;
  double worst = 0;
  for (size_t i = 0; i < a["data"].size(); ++i) {
    const auto& x = a["data"][i]["embedding"];
    const auto& y = b["data"][i]["embedding"];
    if (x.size() != y.size()) return 1e30;
    for (size_t k = 0; k < x.size(); ++k)
      worst = std::max(worst, std::abs(x[k].get<double>() - y[k].get<double>()));
  }
  return worst;
}

TEST(ConcurrencyServer, EmbedClassifySearchInspectAtOnceMatchAlone) {
  const fs::path tmp =
      fs::temp_directory_path() / ("mmfuse_srv_conc_" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  const fs::path plant = tmp / "plant";
  const std::string demo = std::string(MMFUSE_BINARY) +
                           " demo --devices 4 --seed 3 --threads 1 --data " + plant.string() +
                           " --json > " + (tmp / "demo.json").string() + " 2>/dev/null";
  ASSERT_EQ(std::system(demo.c_str()), 0) << demo;

  auto cfg = tiny_config();
  cfg.threads = 2;
  cfg.index_dir = (tmp / "idx").string();
  cfg.plant_file = (plant / "plant.yaml").string();
  RunningServer s(cfg);
  auto c = s.client();

  const std::string jpeg = data_url(fixture("images/img0_photo_640x480_rgb.jpg"), "image/jpeg");
  const std::string png = data_url(fixture("images/img2_square_224x224_rgb.png"), "image/png");
  const nlohmann::json add = {{"texts", {"a red bicycle", "a cat on a mat", "a rusty pump"}},
                              {"images", {{{"image", jpeg}}, {{"image", png}}}}};
  auto added = c.Post("/v1/index/items", add.dump(), "application/json");
  ASSERT_TRUE(added);
  ASSERT_EQ(added->status, 201) << added->body;

  const std::string embed_body =
      nlohmann::json({{"input",
                       {{{"type", "text"}, {"text", "a photo of a cat"}},
                        {{"type", "image_url"}, {"image_url", {{"url", png}}}}}}})
          .dump();
  const std::string classify_body =
      nlohmann::json({{"image", jpeg}, {"labels", {"cat", "dog", "pump"}}}).dump();
  const std::string search_body = R"({"text":"a cat","type":"all","top_k":4})";
  auto alone = [&](const std::string& route, const std::string& body) {
    auto r = c.Post(route.c_str(), body, "application/json");
    EXPECT_TRUE(r && r->status == 200) << route << ": " << (r ? r->body : "no response");
    return json_of(r);
  };
  const auto embed_ref = alone("/v1/embeddings", embed_body);
  const auto classify_ref = alone("/v1/classify", classify_body);
  const auto search_ref = alone("/v1/search", search_body);

  std::vector<std::string> devices;
  for (const auto& e : fs::directory_iterator(plant / "devices"))
    devices.push_back(e.path().filename());
  std::sort(devices.begin(), devices.end());
  ASSERT_FALSE(devices.empty());

  std::atomic<int> inspected{0}, wrong{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t)
    clients.emplace_back([&, t] {
      auto client = s.client();
      for (int round = 0; round < 3; ++round) {
        switch ((t + round) % 4) {
          case 0: {
            auto j = json_of(client.Post("/v1/embeddings", embed_body, "application/json"));
            if (max_abs_embeddings(j, embed_ref) > 1e-5) wrong.fetch_add(1);
            break;
          }
          case 1: {
            auto j = json_of(client.Post("/v1/classify", classify_body, "application/json"));
            if (j != classify_ref) wrong.fetch_add(1);
            break;
          }
          case 2: {
            auto j = json_of(client.Post("/v1/search", search_body, "application/json"));
            if (j != search_ref) wrong.fetch_add(1);
            break;
          }
          default: {
            const std::string device = devices[static_cast<size_t>(t) % devices.size()];
            const fs::path d = plant / "devices" / device;
            httplib::MultipartFormDataItems items = {
                {"device", device, "", ""},
                {"point", "drive", "", ""},
                {"image", file_text(newest(d / "camera")), "shot.png", "image/png"},
                {"ir", file_text(newest(d / "ir")), "ir.png", "image/png"},
                {"audio", file_text(newest(d / "sound/live")), "clip.wav", "audio/wav"},
                {"sensors", file_text(newest(d / "sensors/live")), "window.csv", "text/csv"}};
            auto r = client.Post("/v1/inspect", items);
            if (r && r->status == 201)
              inspected.fetch_add(1);
            else
              wrong.fetch_add(1);
          }
        }
      }
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(wrong.load(), 0);
  // Every upload is one stored inspection.
  auto stored = json_of(c.Get("/v1/inspections?limit=1000"));
  EXPECT_EQ(stored["inspections"].size(), static_cast<size_t>(inspected.load()));
  s.srv.reset();
  fs::remove_all(tmp);
}

}  // namespace
}  // namespace mmfuse::test
