// Plant routes on a generated demo plant (`mmfuse demo`): uploads through
// POST /v1/inspect are judged, fused and recorded in the real SQLite store; the
// read routes answer in the shapes the dashboard uses; acknowledging changes the
// store; alarms go out through a real webhook receiver on 127.0.0.1.
#include <mutex>
#include <thread>

#include "server_test_util.h"

namespace fs = std::filesystem;

namespace mmfuse::test {

namespace {

struct DemoPlant {
  DemoPlant() {
    dir = fs::temp_directory_path() / ("mmfuse_srv_plant_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    const std::string cmd = std::string(MMFUSE_BINARY) +
                            " demo --devices 3 --seed 1 --threads 1 --data " + dir.string() +
                            " --json > " + (dir.string() + ".json") + " 2>/dev/null";
    ok = std::system(cmd.c_str()) == 0 && fs::exists(dir / "plant.yaml");
    if (ok) truth = nlohmann::json::parse(file_text(dir / "truth.json"));
  }
  ~DemoPlant() {
    fs::remove_all(dir);
    fs::remove(dir.string() + ".json");
  }
  std::string newest(const std::string& device, const std::string& sub) const {
    std::string best;
    for (const auto& e : fs::directory_iterator(dir / "devices" / device / sub))
      if (e.is_regular_file() && e.path().string() > best) best = e.path().string();
    return best;
  }
  httplib::MultipartFormDataItems upload(const std::string& device) const {
    return {{"device", device, "", ""},
            {"point", "drive", "", ""},
            {"image", file_text(newest(device, "camera")), "shot.png", "image/png"},
            {"ir", file_text(newest(device, "ir")), "ir.png", "image/png"},
            {"audio", file_text(newest(device, "sound/live")), "clip.wav", "audio/wav"},
            {"sensors", file_text(newest(device, "sensors/live")), "window.csv", "text/csv"}};
  }
  fs::path dir;
  bool ok = false;
  nlohmann::json truth;
};

}  // namespace

TEST(ServerPlant, InspectRecordAcknowledge) {
  DemoPlant demo;
  ASSERT_TRUE(demo.ok) << "mmfuse demo failed";
  // A webhook receiver for the plant's alarm sink.
  httplib::Server receiver;
  std::mutex mutex;
  std::vector<nlohmann::json> received;
  receiver.Post("/hook", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex);
    received.push_back(nlohmann::json::parse(req.body, nullptr, false));
    res.status = 200;
  });
  const int hook_port = receiver.bind_to_any_port("127.0.0.1");
  std::thread hook([&] { receiver.listen_after_bind(); });
  {
    std::ofstream(demo.dir / "plant.yaml", std::ios::app)
        << "alarms:\n  webhook:\n    url: http://127.0.0.1:" << hook_port << "/hook\n";
  }
  server::ServerConfig cfg;
  cfg.port = 0;
  cfg.threads = 1;
  cfg.http_threads = 8;
  cfg.plant_file = (demo.dir / "plant.yaml").string();
  RunningServer s(cfg);
  auto c = s.client();
  EXPECT_EQ(json_of(c.Get("/info"))["features"]["plant"], true);

  auto devices = json_of(c.Get("/v1/devices"));
  ASSERT_EQ(devices["devices"].size(), 3u);
  for (const auto& d : devices["devices"]) {
    EXPECT_EQ(d["status"], "unknown");
    EXPECT_TRUE(d["last_fused_score"].is_null());
    EXPECT_TRUE(d.contains("area") && d.contains("location") && d.contains("open_alarms"));
  }
  auto round = json_of(c.Get("/v1/rounds/current"));
  EXPECT_EQ(round["status"], "none");
  EXPECT_TRUE(round["round_id"].is_null());

  size_t alarms = 0;
  for (const auto& t : demo.truth) {
    const std::string device = t["device"];
    auto r = c.Post("/v1/inspect", demo.upload(device));
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 201) << r->body;
    auto j = json_of(r);
    EXPECT_EQ(j["device_id"], device);
    EXPECT_EQ(j["point_id"], "drive");
    EXPECT_EQ(j["modalities"].size(), 4u);
    EXPECT_EQ(j["alarm"].get<bool>(), t["machine_fault"].get<bool>())
        << device << " " << t["scenario"];
    alarms += j["alarm"].get<bool>();
  }
  ASSERT_GE(alarms, 1u);

  auto list = json_of(c.Get("/v1/alarms?acknowledged=false"));
  ASSERT_EQ(list["alarms"].size(), alarms);
  auto alarm = list["alarms"][0];
  EXPECT_EQ(alarm["acknowledged"], false);
  EXPECT_TRUE(alarm["acknowledged_by"].is_null());
  EXPECT_TRUE(alarm["modalities"].is_object());
  for (const auto& [k, v] : alarm["modalities"].items()) EXPECT_TRUE(v.is_number()) << k;
  ASSERT_FALSE(alarm["evidence"].empty());
  for (const auto& url : alarm["evidence"]) {
    auto ev = c.Get(url.get<std::string>());
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->status, 200) << url;
  }
  // Devices now carry their latest result.
  devices = json_of(c.Get("/v1/devices"));
  for (const auto& d : devices["devices"]) {
    EXPECT_TRUE(d["status"] == "ok" || d["status"] == "alarm") << d;
    EXPECT_TRUE(d["last_fused_score"].is_number());
    EXPECT_TRUE(d["last_inspected"].is_string());
  }
  // Acknowledge: idempotent, keeps the first user; the store changed.
  const std::string ack_path = "/v1/alarms/" + std::to_string(alarm["id"].get<int64_t>()) + "/ack";
  auto ack = c.Post(ack_path, R"({"user":"ann"})", "application/json");
  ASSERT_EQ(ack->status, 200) << ack->body;
  EXPECT_EQ(json_of(ack)["acknowledged_by"], "ann");
  EXPECT_TRUE(json_of(ack)["acknowledged_at"].is_string());
  auto again = c.Post(ack_path, R"({"user":"bob"})", "application/json");
  EXPECT_EQ(json_of(again)["acknowledged_by"], "ann");
  EXPECT_EQ(json_of(c.Get("/v1/alarms?acknowledged=false"))["alarms"].size(), alarms - 1);
  EXPECT_EQ(json_of(c.Get("/v1/alarms?acknowledged=true"))["alarms"].size(), 1u);
  EXPECT_EQ(c.Post("/v1/alarms/99999/ack", R"({"user":"ann"})", "application/json")->status, 404);
  EXPECT_EQ(c.Post(ack_path, R"({"user":""})", "application/json")->status, 400);
  EXPECT_EQ(c.Post(ack_path, R"({"name":"ann"})", "application/json")->status, 400);
  EXPECT_EQ(c.Get("/v1/alarms?acknowledged=maybe")->status, 400);

  auto insp = json_of(c.Get("/v1/inspections?limit=10"));
  ASSERT_EQ(insp["inspections"].size(), 3u);
  const auto& first = insp["inspections"][0];
  for (const char* k : {"id", "round_id", "device_id", "point_id", "started", "finished",
                        "fused_score", "alarm", "fusion_rule", "modalities"})
    EXPECT_TRUE(first.contains(k)) << k;
  EXPECT_EQ(json_of(c.Get("/v1/inspections?device=dev-001"))["inspections"].size(), 1u);
  EXPECT_EQ(json_of(c.Get("/v1/inspections?since=2999-01-01T00:00:00Z"))["inspections"].size(), 0u);
  EXPECT_EQ(c.Get("/v1/inspections?since=yesterday")->status, 400);
  EXPECT_EQ(c.Get("/v1/inspections?limit=0")->status, 400);

  auto trend = json_of(c.Get("/v1/devices/dev-001/trend"));
  EXPECT_EQ(trend["device_id"], "dev-001");
  EXPECT_EQ(trend["fused"].size(), 1u);
  EXPECT_TRUE(trend["sensors"].is_object());
  EXPECT_EQ(c.Get("/v1/devices/nope/trend")->status, 404);

  auto stats = json_of(c.Get("/v1/stats/alarms?days=7"));
  EXPECT_EQ(stats["by_day"].size(), 7u);
  int64_t total = 0;
  for (const auto& d : stats["by_day"]) total += d["count"].get<int64_t>();
  EXPECT_EQ(total, static_cast<int64_t>(alarms));
  EXPECT_EQ(c.Get("/v1/stats/alarms?days=0")->status, 400);

  // Upload errors.
  auto items = demo.upload("dev-001");
  items[0].content = "no-such-device";
  EXPECT_EQ(c.Post("/v1/inspect", items)->status, 404);
  items = demo.upload("dev-001");
  items.erase(items.begin());  // no device field
  EXPECT_EQ(c.Post("/v1/inspect", items)->status, 400);
  EXPECT_EQ(c.Post("/v1/inspect", R"({"device":"dev-001"})", "application/json")->status, 400);
  items = demo.upload("dev-001");
  items[2].content = "not an image";
  auto bad_image = c.Post("/v1/inspect", items);
  EXPECT_EQ(bad_image->status, 400) << bad_image->body;

  const std::string m = c.Get("/metrics")->body;
  EXPECT_NE(m.find("mmfuse_inspections_recorded_total 3"), std::string::npos) << m;
  EXPECT_NE(m.find("mmfuse_outbox_backlog{sink=\"all\"}"), std::string::npos);
  EXPECT_NE(m.find("mmfuse_alarms_open " + std::to_string(alarms - 1) + "\n"), std::string::npos)
      << m;
  EXPECT_NE(m.find("mmfuse_store_rows{kind=\"inspections\"} 3\n"), std::string::npos) << m;

  s.srv->stop();  // flushes the outbox
  {
    std::lock_guard<std::mutex> lock(mutex);
    EXPECT_EQ(received.size(), alarms);
    if (!received.empty()) {
      EXPECT_EQ(received[0]["id"], alarm["id"]);
    }
  }
  receiver.stop();
  hook.join();
}

}  // namespace mmfuse::test
