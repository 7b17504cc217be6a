// `mmfuse serve` configuration: defaults, relative paths, and errors that name
// the field and its line.
#include <fstream>

#include "mmfuse/error.h"
#include "server/server_config.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace mmfuse::test {

namespace {
struct ConfigFile {
  explicit ConfigFile(const std::string& text) {
    dir = fs::temp_directory_path() / ("mmfuse_srv_cfg_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    path = dir / "mmfuse.yaml";
    std::ofstream(path) << text;
  }
  ~ConfigFile() { fs::remove_all(dir); }
  fs::path dir, path;
};

std::string error_of(const std::string& text) {
  ConfigFile f(text);
  try {
    server::load_server_config(f.path);
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}
}  // namespace

TEST(ServerConfig, ReadsEveryField) {
  const std::string model = fixture("clip/models/clip-tiny-quickgelu-p32").string();
  ConfigFile f("host: 0.0.0.0\nport: 9000\nthreads: 2\nmodels:\n  clip: " + model +
               "\nindex:\n  dir: idx\nbatching: {enabled: false, max_batch: 16, max_wait_ms: 3, "
               "queue_size: 9}\n"
               "limits: {max_body_bytes: 4096, max_image_pixels: 1000, request_timeout_s: 7}\n"
               "api_keys: [abcdefgh12]\ncors: {origins: ['http://a.example']}\n");
  const auto c = server::load_server_config(f.path);
  EXPECT_EQ(c.host, "0.0.0.0");
  EXPECT_EQ(c.port, 9000);
  EXPECT_EQ(c.threads, 2);
  ASSERT_EQ(c.models.size(), 1u);
  EXPECT_EQ(c.models[0].name, "clip");
  EXPECT_EQ(c.index_dir, (f.dir / "idx").string());  // relative to the file
  EXPECT_FALSE(c.batching.enabled);
  EXPECT_EQ(c.batching.max_batch, 16u);
  EXPECT_EQ(c.batching.max_wait_ms, 3);
  EXPECT_EQ(c.batching.queue_size, 9u);
  EXPECT_EQ(c.limits.max_body_bytes, 4096u);
  EXPECT_EQ(c.limits.max_image_pixels, 1000);
  EXPECT_EQ(c.limits.request_timeout_s, 7);
  EXPECT_EQ(c.api_keys, std::vector<std::string>{"abcdefgh12"});
  EXPECT_EQ(c.cors_origins, std::vector<std::string>{"http://a.example"});
}

TEST(ServerConfig, ErrorsNameFieldAndLine) {
  const std::string model = fixture("clip/models/clip-tiny-quickgelu-p32").string();
  const std::string models = "models:\n  clip: " + model + "\n";
  struct Case {
    std::string text, want1, want2;
  };
  const std::vector<Case> cases = {
      {models + "port: 99999\n", "mmfuse.yaml:3", "port: must be between 0 and 65535"},
      {models + "prot: 80\n", "mmfuse.yaml:3", "prot: unknown key"},
      {models + "batching:\n  max_batch: lots\n", "mmfuse.yaml:4",
       "batching.max_batch: expected an integer"},
      {models + "batching:\n  max_wait: 3\n", "mmfuse.yaml:4", "batching.max_wait: unknown key"},
      {models + "limits: [1, 2]\n", "mmfuse.yaml:3", "limits: expected a mapping"},
      {models + "api_keys: [short]\n", "mmfuse.yaml:3", "api_keys: a key must have at least 8"},
      {models + "cors:\n  origins: [evil]\n", "cors.origins", "is not an origin"},
      {"models:\n  clip: /nonexistent/model\n", "models.clip", "is not a folder"},
      {"port: 80\n", "models", "at least one model"},
      {models + "host: [unclosed\n", "mmfuse.yaml:", "not valid YAML"},
      {models + "batching:\n  enabled: maybe\n", "mmfuse.yaml:4",
       "batching.enabled: expected true or false"},
  };
  for (const auto& k : cases) {
    const std::string e = error_of(k.text);
    EXPECT_NE(e.find(k.want1), std::string::npos) << k.text << "\n-> " << e;
    EXPECT_NE(e.find(k.want2), std::string::npos) << k.text << "\n-> " << e;
  }
}

}  // namespace mmfuse::test
