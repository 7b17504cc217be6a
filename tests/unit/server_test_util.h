// Helpers for the server tests: an in-process `mmfuse serve` on 127.0.0.1 (free
// port) with the tiny CLIP fixture, an HTTP client, data URLs of fixture images.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "server/http_util.h"
#include "server/server.h"
#include "test_util.h"

namespace mmfuse::test {

inline std::string tiny_clip() {
  return fixture("clip/models/clip-tiny-quickgelu-p32").string();
}

inline server::ServerConfig tiny_config() {
  server::ServerConfig c;
  c.host = "127.0.0.1";
  c.port = 0;
  c.threads = 1;
  c.http_threads = 16;
  c.models.push_back({"tiny", tiny_clip()});
  c.limits.request_timeout_s = 10;
  return c;
}

// A started server; stopped when destroyed.
struct RunningServer {
  explicit RunningServer(server::ServerConfig config, bool wait = true)
      : srv(std::make_unique<server::Server>(std::move(config))) {
    port = srv->bind();
    srv->start();
    if (wait) {
      EXPECT_TRUE(srv->wait_ready(std::chrono::seconds(30))) << srv->load_error();
    }
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(20, 0);
    return c;
  }
  std::unique_ptr<server::Server> srv;
  int port = 0;
};

inline nlohmann::json json_of(const httplib::Result& r) {
  if (!r) return nullptr;
  return nlohmann::json::parse(r->body, nullptr, false);
}

inline std::string file_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline std::string data_url(const std::filesystem::path& p, const std::string& mime) {
  const std::string bytes = file_text(p);
  return "data:" + mime + ";base64," + server::base64_encode(bytes.data(), bytes.size());
}

// Checks the error shape and returns its type.
inline std::string error_type(const httplib::Result& r) {
  auto j = json_of(r);
  if (!j.is_object() || !j.contains("error") || !j["error"].contains("type") ||
      !j["error"].contains("message"))
    return "<no error object: " + (r ? r->body.substr(0, 200) : std::string("no response")) + ">";
  return j["error"]["type"].get<std::string>();
}

}  // namespace mmfuse::test
