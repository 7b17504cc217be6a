// Dynamic batching: concurrent requests merge into one model call (seen in the
// batch-size metrics), a client batch over max_batch is split, a full queue
// answers 503 with Retry-After, and stop() lets in-flight requests finish.
#include <future>
#include <thread>

#include "server/metrics.h"
#include "server_test_util.h"

namespace mmfuse::test {

namespace {
int post_text(int port, const std::string& text) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(20, 0);
  auto r = c.Post("/v1/embeddings", nlohmann::json({{"input", text}}).dump(), "application/json");
  return r ? r->status : -1;
}
// "prefix N" (built without operator+, which trips a GCC 12 -Wrestrict false positive).
std::string numbered(const char* prefix, int i) {
  std::string s = prefix;
  s += std::to_string(i);
  return s;
}
}  // namespace

TEST(ServerBatching, ConcurrentRequestsMergeIntoOneCall) {
  auto cfg = tiny_config();
  cfg.batching.max_batch = 8;
  // The batch closes as soon as 8 inputs are there; the long wait only gives a
  // loaded machine time to start all 8 client threads.
  cfg.batching.max_wait_ms = 10000;
  RunningServer s(cfg);
  std::vector<std::future<std::string>> replies;
  for (int i = 0; i < 8; ++i)
    replies.push_back(std::async(std::launch::async, [&s, i] {
      auto r = s.client().Post("/v1/embeddings",
                               nlohmann::json({{"input", numbered("request ", i)}}).dump(),
                               "application/json");
      return r && r->status == 200 ? r->body : std::string();
    }));
  std::vector<nlohmann::json> bodies;
  for (auto& f : replies) {
    bodies.push_back(nlohmann::json::parse(f.get(), nullptr, false));
    EXPECT_TRUE(bodies.back().is_object());
  }
  EXPECT_EQ(s.srv->metrics().batches_of_size("tiny", 8), 1u);
  const std::string m = s.client().Get("/metrics")->body;
  EXPECT_NE(m.find("mmfuse_batch_size_bucket{model=\"tiny\",le=\"4\"} 0"), std::string::npos) << m;
  EXPECT_NE(m.find("mmfuse_batch_size_bucket{model=\"tiny\",le=\"8\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("mmfuse_inference_inputs_total{model=\"tiny\",kind=\"text\"} 8"),
            std::string::npos)
      << m;

  // Results do not depend on the batch a request landed in: "request 3" first in
  // a client batch of 8 equals "request 3" merged from 8 concurrent requests.
  nlohmann::json input = nlohmann::json::array();
  input.push_back("request 3");
  for (int i = 0; i < 7; ++i) input.push_back(numbered("other ", i));
  auto own = json_of(s.client().Post("/v1/embeddings", nlohmann::json({{"input", input}}).dump(),
                                     "application/json"));
  ASSERT_TRUE(bodies[3].is_object() && own.is_object());
  EXPECT_LE(max_abs_diff(own["data"][0]["embedding"].get<std::vector<float>>(),
                         bodies[3]["data"][0]["embedding"].get<std::vector<float>>()),
            1e-6);
}

TEST(ServerBatching, LargeClientBatchIsSplitNotRejected) {
  auto cfg = tiny_config();
  cfg.batching.max_batch = 8;
  cfg.batching.max_wait_ms = 0;
  RunningServer s(cfg);
  nlohmann::json input = nlohmann::json::array();
  for (int i = 0; i < 20; ++i) input.push_back(numbered("text number ", i));
  auto r = s.client().Post("/v1/embeddings", nlohmann::json({{"input", input}}).dump(),
                           "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = json_of(r);
  ASSERT_EQ(j["data"].size(), 20u);
  for (size_t i = 0; i < 20; ++i) EXPECT_EQ(j["data"][i]["index"], i);
  EXPECT_EQ(s.srv->metrics().batches_of_size("tiny", 8), 2u);
  EXPECT_EQ(s.srv->metrics().batches_of_size("tiny", 4), 1u);
  // Same vectors as one-by-one requests.
  auto one = json_of(
      s.client().Post("/v1/embeddings", R"({"input":"text number 17"})", "application/json"));
  EXPECT_LE(max_abs_diff(one["data"][0]["embedding"].get<std::vector<float>>(),
                         j["data"][17]["embedding"].get<std::vector<float>>()),
            1e-6);
}

TEST(ServerBatching, BatchingOffRunsRequestsAlone) {
  auto cfg = tiny_config();
  cfg.batching.enabled = false;
  cfg.batching.max_batch = 4;
  RunningServer s(cfg);
  std::vector<std::future<int>> replies;
  for (int i = 0; i < 6; ++i)
    replies.push_back(std::async(std::launch::async, post_text, s.port, numbered("t", i)));
  for (auto& f : replies) EXPECT_EQ(f.get(), 200);
  EXPECT_EQ(s.srv->metrics().batches_of_size("tiny", 1), 6u);
  EXPECT_EQ(json_of(s.client().Get("/info"))["features"]["batching"], false);
}

TEST(ServerBatching, FullQueueAnswers503WithRetryAfter) {
  auto cfg = tiny_config();
  cfg.batching.max_batch = 64;
  cfg.batching.max_wait_ms = 4000;  // the worker holds a partial batch open
  cfg.batching.queue_size = 2;
  RunningServer s(cfg);
  auto first = std::async(std::launch::async, post_text, s.port, "one");
  auto second = std::async(std::launch::async, post_text, s.port, "two");
  // Wait until both wait in the queue.
  ASSERT_TRUE(wait_until(
      [&] {
        const auto m = s.client().Get("/metrics");
        return m && m->body.find("mmfuse_queue_depth{model=\"tiny\"} 2") != std::string::npos;
      },
      4000))
      << "the two requests never waited in the queue together";
  auto r = s.client().Post("/v1/embeddings", R"({"input":"three"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->get_header_value("Retry-After"), "1");
  EXPECT_EQ(error_type(r), "unavailable");
  EXPECT_EQ(first.get(), 200);
  EXPECT_EQ(second.get(), 200);
  EXPECT_NE(s.client().Get("/metrics")->body.find("mmfuse_queue_rejected_total{model=\"tiny\"} 1"),
            std::string::npos);
  EXPECT_EQ(s.srv->metrics().batches_of_size("tiny", 2), 1u);
}

TEST(ServerBatching, StopFinishesInFlightRequests) {
  auto cfg = tiny_config();
  cfg.batching.max_batch = 64;
  cfg.batching.max_wait_ms = 800;
  RunningServer s(cfg);
  auto pending = std::async(std::launch::async, post_text, s.port, "in flight");
  ASSERT_TRUE(wait_until(
      [&] {
        return s.srv->metrics().render().find("mmfuse_queue_depth{model=\"tiny\"} 1") !=
               std::string::npos;
      },
      5000))
      << "the request never reached the queue";
  s.srv->stop();  // while the request waits for its batch
  EXPECT_EQ(pending.get(), 200);
  // No longer accepting.
  httplib::Client c("127.0.0.1", s.port);
  c.set_connection_timeout(1, 0);
  EXPECT_FALSE(c.Get("/healthz"));
}

}  // namespace mmfuse::test
