// Bad input, limits and access control of the server: every bad request gets a
// 4xx with the JSON error shape and the server stays up; auth on/off; CORS off by
// default; files never served from outside the static and evidence roots.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "server_test_util.h"

namespace fs = std::filesystem;

namespace mmfuse::test {

namespace {

// Sends raw bytes (optionally half-closing) and returns everything the server answered.
std::string raw_request(int port, const std::string& bytes, bool half_close = false) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "";
  }
  (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  if (half_close) ::shutdown(fd, SHUT_WR);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

void put_chunk(std::string& png, const char* type, const std::string& data) {
  const uint32_t len = static_cast<uint32_t>(data.size());
  for (int s = 24; s >= 0; s -= 8) png += static_cast<char>((len >> s) & 0xFF);
  std::string td = std::string(type, 4) + data;
  png += td;
  const uint32_t crc = static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(td.data()), static_cast<uInt>(td.size())));
  for (int s = 24; s >= 0; s -= 8) png += static_cast<char>((crc >> s) & 0xFF);
}

// A valid 10000x10000 grey PNG of zeros: ~100 KB that inflates to 100 MB.
std::string png_bomb() {
  const uint32_t side = 10000;
  std::string ihdr;
  for (uint32_t v : {side, side})
    for (int s = 24; s >= 0; s -= 8) ihdr += static_cast<char>((v >> s) & 0xFF);
  ihdr += std::string("\x08\x00\x00\x00\x00", 5);  // 8-bit grey, deflate, no filter, no interlace
  z_stream z{};
  deflateInit(&z, 9);
  std::string row(side + 1, '\0'), idat;
  std::vector<unsigned char> out(1 << 16);
  for (uint32_t y = 0; y < side; ++y) {
    z.next_in = reinterpret_cast<Bytef*>(row.data());
    z.avail_in = static_cast<uInt>(row.size());
    const int flush = y + 1 == side ? Z_FINISH : Z_NO_FLUSH;
    do {
      z.next_out = out.data();
      z.avail_out = static_cast<uInt>(out.size());
      deflate(&z, flush);
      idat.append(reinterpret_cast<char*>(out.data()), out.size() - z.avail_out);
    } while (z.avail_out == 0);
  }
  deflateEnd(&z);
  std::string png = "\x89PNG\r\n\x1a\n";
  put_chunk(png, "IHDR", ihdr);
  put_chunk(png, "IDAT", idat);
  put_chunk(png, "IEND", "");
  return png;
}

std::string image_item(const std::string& url) {
  return nlohmann::json({{"input", {{{"type", "image_url"}, {"image_url", {{"url", url}}}}}}})
      .dump();
}

}  // namespace

TEST(ServerSafety, BadInputGets4xxAndServerStaysUp) {
  auto cfg = tiny_config();
  cfg.limits.max_body_bytes = 1 << 20;
  RunningServer s(cfg);
  auto c = s.client();
  const std::string jpeg = file_text(fixture("images/img0_photo_640x480_rgb.jpg"));
  const std::string bomb = png_bomb();
  ASSERT_LT(bomb.size(), 1u << 20);
  struct Case {
    const char* name;
    std::string path, body;
    int status;
    const char* type;
  };
  const std::vector<Case> cases = {
      {"malformed JSON", "/v1/embeddings", "{\"input\": [\"a\",", 400, "bad_request"},
      {"empty body", "/v1/embeddings", "", 400, "bad_request"},
      {"not an object", "/v1/embeddings", "[1,2]", 400, "bad_request"},
      {"input missing", "/v1/embeddings", "{}", 400, "bad_request"},
      {"input wrong type", "/v1/embeddings", R"({"input": 5})", 400, "bad_request"},
      {"empty input list", "/v1/embeddings", R"({"input": []})", 400, "bad_request"},
      {"item wrong type", "/v1/embeddings", R"({"input": [{"type": "audio"}]})", 400,
       "bad_request"},
      {"text not a string", "/v1/embeddings", R"({"input": [{"type": "text", "text": 3}]})", 400,
       "bad_request"},
      {"token ids", "/v1/embeddings", R"({"input": [[1, 2, 3]]})", 422, "unsupported"},
      {"model wrong type", "/v1/embeddings", R"({"input": "a", "model": 7})", 400, "bad_request"},
      {"unknown model", "/v1/embeddings", R"({"input": "a", "model": "gpt-9"})", 404, "not_found"},
      {"bad encoding", "/v1/embeddings", R"({"input": "a", "encoding_format": "int8"})", 400,
       "bad_request"},
      {"invalid base64", "/v1/embeddings", image_item("data:image/png;base64,@@@not-base64@@@"),
       400, "bad_request"},
      {"non-image bytes", "/v1/embeddings",
       image_item("data:image/png;base64," + server::base64_encode("hello, not an image", 19)), 400,
       "bad_request"},
      {"truncated JPEG", "/v1/embeddings",
       image_item("data:image/jpeg;base64," + server::base64_encode(jpeg.data(), 600)), 400,
       "bad_request"},
      {"remote URL", "/v1/embeddings", image_item("https://example.com/cat.png"), 422,
       "unsupported"},
      {"100-megapixel PNG", "/v1/embeddings",
       image_item("data:image/png;base64," + server::base64_encode(bomb.data(), bomb.size())), 413,
       "too_large"},
      {"oversized body", "/v1/embeddings", "{\"input\": \"" + std::string(2 << 20, 'a') + "\"}",
       413, "too_large"},
      {"classify bomb", "/v1/classify",
       nlohmann::json(
           {{"image", server::base64_encode(bomb.data(), bomb.size())}, {"labels", {"a"}}})
           .dump(),
       413, "too_large"},
      {"classify labels wrong", "/v1/classify", R"({"image": "AAAA", "labels": "cat"})", 400,
       "bad_request"},
      {"search without index", "/v1/search", R"({"text": "a"})", 404, "not_found"},
  };
  for (const auto& k : cases) {
    auto r = c.Post(k.path, k.body, "application/json");
    ASSERT_TRUE(r) << k.name << ": no response";
    EXPECT_EQ(r->status, k.status) << k.name << ": " << r->body.substr(0, 300);
    EXPECT_EQ(error_type(r), k.type) << k.name;
    auto h = c.Get("/healthz");
    ASSERT_TRUE(h && h->status == 200) << "server down after " << k.name;
  }
  // Unknown routes and methods get JSON too.
  auto nf = c.Get("/v1/nothing-here");
  EXPECT_EQ(nf->status, 404);
  EXPECT_EQ(error_type(nf), "not_found");
  auto na = c.Get("/v1/embeddings");
  EXPECT_EQ(na->status, 405);
  EXPECT_EQ(na->get_header_value("Allow"), "POST");
  EXPECT_EQ(error_type(na), "method_not_allowed");
  auto put = c.Put("/v1/embeddings", "{}", "application/json");
  EXPECT_EQ(put->status, 405);
  // Truncated bodies (announced length never arrives, a cut multipart form) and garbage request
  // lines.
  const std::string cut =
      raw_request(s.port,
                  "POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  "Content-Length: 1000\r\n\r\n{\"input\": \"abc",
                  true);
  EXPECT_TRUE(cut.empty() || cut.rfind("HTTP/1.1 4", 0) == 0) << cut;
  const std::string multipart =
      raw_request(s.port,
                  "POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                  "boundary=XYZ\r\n"
                  "Content-Length: 400\r\n\r\n--XYZ\r\nContent-Disposition: form-data; "
                  "name=\"image\"\r\n\r\nabc",
                  true);
  EXPECT_TRUE(multipart.empty() || multipart.rfind("HTTP/1.1 4", 0) == 0) << multipart;
  const std::string garbage = raw_request(s.port, "\x16\x03\x01 garbage\r\n\r\n", true);
  EXPECT_TRUE(garbage.empty() || garbage.rfind("HTTP/1.1 4", 0) == 0) << garbage;
  auto h = c.Get("/healthz");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  auto ok = c.Post("/v1/embeddings", R"({"input": "still works"})", "application/json");
  EXPECT_EQ(ok->status, 200);
}

TEST(ServerSafety, ApiKeys) {
  {
    RunningServer open(tiny_config());
    EXPECT_EQ(open.client().Post("/v1/embeddings", R"({"input":"a"})", "application/json")->status,
              200);
  }
  auto cfg = tiny_config();
  cfg.api_keys = {"key-one-1234", "key-two-5678"};
  RunningServer s(cfg);
  auto c = s.client();
  auto missing = c.Post("/v1/embeddings", R"({"input":"a"})", "application/json");
  EXPECT_EQ(missing->status, 401);
  EXPECT_EQ(error_type(missing), "unauthorized");
  EXPECT_EQ(missing->get_header_value("WWW-Authenticate"), "Bearer");
  httplib::Headers wrong = {{"Authorization", "Bearer key-one-123"}};
  auto w = c.Post("/v1/embeddings", wrong, R"({"input":"a"})", "application/json");
  EXPECT_EQ(w->status, 403);
  EXPECT_EQ(error_type(w), "forbidden");
  auto basic = c.Post("/v1/embeddings", {{"Authorization", "Basic a2V5OnZhbHVl"}},
                      R"({"input":"a"})", "application/json");
  EXPECT_EQ(basic->status, 401);
  for (const char* key : {"key-one-1234", "key-two-5678"}) {
    auto ok = c.Post("/v1/embeddings", {{"Authorization", std::string("Bearer ") + key}},
                     R"({"input":"a"})", "application/json");
    EXPECT_EQ(ok->status, 200) << key;
  }
  // Probes and metrics stay open for the orchestrator.
  EXPECT_EQ(c.Get("/healthz")->status, 200);
  EXPECT_EQ(c.Get("/readyz")->status, 200);
  EXPECT_EQ(c.Get("/metrics")->status, 200);
  EXPECT_EQ(json_of(c.Get("/info"))["features"]["auth"], true);
}

TEST(ServerSafety, CorsOffByDefault) {
  {
    RunningServer s(tiny_config());
    auto r = s.client().Get("/info", {{"Origin", "http://evil.example"}});
    EXPECT_FALSE(r->has_header("Access-Control-Allow-Origin"));
    auto pre = s.client().Options("/v1/embeddings", {{"Origin", "http://evil.example"},
                                                     {"Access-Control-Request-Method", "POST"}});
    EXPECT_FALSE(pre->has_header("Access-Control-Allow-Origin"));
  }
  auto cfg = tiny_config();
  cfg.cors_origins = {"http://dash.example:8080"};
  RunningServer s(cfg);
  auto c = s.client();
  auto r = c.Get("/info", {{"Origin", "http://dash.example:8080"}});
  EXPECT_EQ(r->get_header_value("Access-Control-Allow-Origin"), "http://dash.example:8080");
  auto other = c.Get("/info", {{"Origin", "http://evil.example"}});
  EXPECT_FALSE(other->has_header("Access-Control-Allow-Origin"));
  auto pre = c.Options("/v1/embeddings", {{"Origin", "http://dash.example:8080"},
                                          {"Access-Control-Request-Method", "POST"}});
  EXPECT_EQ(pre->status, 204);
  EXPECT_NE(pre->get_header_value("Access-Control-Allow-Headers").find("Authorization"),
            std::string::npos);
}

TEST(ServerSafety, FilesStayInsideTheirRoots) {
  const fs::path tmp =
      fs::temp_directory_path() / ("mmfuse_srv_files_" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp / "web/assets");
  fs::create_directories(tmp / "data/evidence/r1");
  { std::ofstream(tmp / "web/index.html") << "<html>dashboard</html>"; }
  { std::ofstream(tmp / "web/assets/app.js") << "console.log(1)"; }
  { std::ofstream(tmp / "secret.txt") << "top secret"; }
  { std::ofstream(tmp / "data/evidence/r1/cam.png") << "png-bytes"; }
  fs::create_symlink(tmp / "secret.txt", tmp / "web/link.txt");
  fs::create_symlink(tmp, tmp / "data/evidence/up");
  auto cfg = tiny_config();
  cfg.static_root = (tmp / "web").string();
  cfg.evidence_root = (tmp / "data/evidence").string();
  RunningServer s(cfg);
  auto c = s.client();
  auto index = c.Get("/");
  EXPECT_EQ(index->status, 200);
  EXPECT_EQ(index->body, "<html>dashboard</html>");
  EXPECT_NE(index->get_header_value("Content-Type").find("text/html"), std::string::npos);
  auto js = c.Get("/assets/app.js");
  EXPECT_EQ(js->status, 200);
  EXPECT_NE(js->get_header_value("Content-Type").find("javascript"), std::string::npos);
  auto ev = c.Get("/evidence/r1/cam.png");
  EXPECT_EQ(ev->status, 200);
  EXPECT_EQ(ev->body, "png-bytes");
  for (const char* path : {"/link.txt", "/evidence/up/secret.txt", "/evidence/../secret.txt",
                           "/missing.js", "/evidence/r1/none.png"}) {
    auto r = c.Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 404) << path;
    EXPECT_EQ(r->body.find("top secret"), std::string::npos) << path;
  }
  // Raw request lines that clients would normalise.
  for (const char* target :
       {"/../secret.txt", "/%2e%2e/secret.txt", "/evidence/%2e%2e/%2e%2e/secret.txt",
        "/evidence/..%2f..%2fsecret.txt", "//etc/passwd", "/evidence//etc/passwd"}) {
    const std::string out = raw_request(
        s.port, std::string("GET ") + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(out.find("top secret"), std::string::npos) << target;
    EXPECT_EQ(out.find("root:"), std::string::npos) << target;
    EXPECT_TRUE(out.rfind("HTTP/1.1 4", 0) == 0) << target << ": " << out.substr(0, 100);
  }
  fs::remove_all(tmp);
}

}  // namespace mmfuse::test
