// /v1/chat/completions and /v1/completions end to end: an in-process server on
// 127.0.0.1 with the tiny LLaVA fixture (random weights, so answers are
// gibberish, but deterministic when greedy), real HTTP clients, SSE parsing.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <regex>
#include <thread>

#include "server/metrics.h"
#include "server_test_util.h"

namespace mmfuse::test {

using nlohmann::json;

namespace {

std::string tiny_llava() {
  return fixture("llava/models/llava-1.5-tiny").string();
}
std::string tiny_llava_lora() {
  return fixture("llava/models/llava-1.5-tiny-lora").string();
}

server::ServerConfig llava_config(size_t max_running = 8, size_t max_queued = 64) {
  server::ServerConfig c;
  c.host = "127.0.0.1";
  c.port = 0;
  c.threads = 1;
  c.http_threads = 32;
  server::GenerativeModelSpec spec;
  spec.name = "llava";
  spec.dir = tiny_llava();
  spec.adapters.emplace_back("lora", tiny_llava_lora());
  spec.max_running = max_running;
  spec.max_queued = max_queued;
  c.generative_models.push_back(spec);
  c.limits.request_timeout_s = 60;
  c.limits.generation_timeout_s = 120;
  return c;
}

std::string photo_url() {
  return data_url(fixture("photos/bus.jpg"), "image/jpeg");
}

json image_question(int max_tokens, bool stream) {
  return {{"model", "llava"},
          {"messages",
           json::array(
               {{{"role", "user"},
                 {"content",
                  json::array({{{"type", "image_url"}, {"image_url", {{"url", photo_url()}}}},
                               {{"type", "text"}, {"text", "What is shown in this image?"}}})}}})},
          {"max_tokens", max_tokens},
          {"temperature", 0},
          {"stream", stream}};
}

// A streamed answer as the client saw it.
struct Streamed {
  int status = 0;
  std::string content_type;
  std::vector<json> chunks;                     // every data: event but [DONE]
  bool done = false;                            // data: [DONE] arrived
  std::map<size_t, std::string> text;           // choice -> concatenated pieces
  std::map<size_t, std::string> finish_reason;  // choice -> its last chunk's reason
  std::string first_role;
  std::string body;  // for messages
};

// POSTs `body` and reads the event stream; `keep_reading` (after each event)
// returning false drops the connection there.
Streamed post_stream(int port, const std::string& path, const json& body,
                     std::function<bool(const Streamed&)> keep_reading = {}) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(60, 0);
  Streamed out;
  std::string buffer;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  req.response_handler = [&](const httplib::Response& r) {
    out.status = r.status;
    out.content_type = r.get_header_value("Content-Type");
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    out.body.append(data, n);
    buffer.append(data, n);
    for (size_t end; (end = buffer.find("\n\n")) != std::string::npos;) {
      const std::string event = buffer.substr(0, end);
      buffer.erase(0, end + 2);
      if (event.rfind("data: ", 0) != 0) continue;  // comments (keep-alive)
      const std::string data_text = event.substr(6);
      if (data_text == "[DONE]") {
        out.done = true;
        continue;
      }
      json chunk = json::parse(data_text, nullptr, false);
      if (chunk.is_discarded()) {
        ADD_FAILURE() << "event is not JSON: " << data_text;
        continue;
      }
      for (const auto& c : chunk.value("choices", json::array())) {
        const size_t i = c["index"].get<size_t>();
        if (c.contains("delta")) {
          if (c["delta"].contains("role")) out.first_role = c["delta"]["role"];
          if (c["delta"].contains("content"))
            out.text[i] += c["delta"]["content"].get<std::string>();
        } else if (c.contains("text")) {
          out.text[i] += c["text"].get<std::string>();
        }
        if (!c["finish_reason"].is_null()) out.finish_reason[i] = c["finish_reason"];
      }
      out.chunks.push_back(std::move(chunk));
      if (keep_reading && !keep_reading(out)) return false;
    }
    return true;
  };
  httplib::Response res;
  httplib::Error error = httplib::Error::Success;
  client.send(req, res, error);
  if (out.status == 0) out.status = res.status;
  return out;
}

// The value of one series in /metrics ("" when absent).
std::string metric(const RunningServer& s, const std::string& series) {
  auto r = s.client().Get("/metrics");
  if (!r) return "";
  const auto at = r->body.find("\n" + series + " ");
  if (at == std::string::npos) return "";
  const auto begin = at + 1 + series.size() + 1;
  return r->body.substr(begin, r->body.find('\n', begin) - begin);
}

}  // namespace

TEST(ServerChat, ModelsListsGenerativeModelsAndAdapters) {
  RunningServer s(llava_config());
  auto r = s.client().Get("/v1/models");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json data = json_of(r)["data"];
  std::map<std::string, json> by_id;
  for (const auto& m : data) by_id[m["id"]] = m;
  ASSERT_TRUE(by_id.count("llava")) << data.dump();
  ASSERT_TRUE(by_id.count("llava+lora")) << data.dump();
  EXPECT_EQ(by_id["llava"]["capabilities"], json::array({"generate"}));
  EXPECT_TRUE(by_id["llava"]["parent"].is_null());
  EXPECT_EQ(by_id["llava+lora"]["parent"], "llava");
  EXPECT_EQ(by_id["llava"]["modalities"], json::array({"text", "image"}));
  EXPECT_EQ(by_id["llava"]["max_model_len"], 4096);
  const json info = json_of(s.client().Get("/info"));
  EXPECT_EQ(info["generative_models"], json::array({"llava", "llava+lora"}));
  EXPECT_EQ(info["features"]["generation"], true);
}

TEST(ServerChat, StreamedAnswerEqualsTheWholeAnswer) {
  RunningServer s(llava_config());
  auto r =
      s.client().Post("/v1/chat/completions", image_question(24, false).dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json whole = json_of(r);
  EXPECT_EQ(whole["object"], "chat.completion");
  EXPECT_EQ(whole["model"], "llava");
  EXPECT_EQ(whole["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  ASSERT_EQ(whole["choices"].size(), 1u);
  EXPECT_EQ(whole["choices"][0]["message"]["role"], "assistant");
  const std::string answer = whole["choices"][0]["message"]["content"];
  const std::string reason = whole["choices"][0]["finish_reason"];
  EXPECT_TRUE(reason == "stop" || reason == "length") << reason;
  const json usage = whole["usage"];
  // The prompt holds the image's 576 feature rows and the text around them.
  EXPECT_GT(usage["prompt_tokens"].get<int>(), 576);
  EXPECT_GE(usage["completion_tokens"].get<int>(), 1);
  EXPECT_LE(usage["completion_tokens"].get<int>(), 24);
  if (reason == "length") {
    EXPECT_EQ(usage["completion_tokens"], 24);
  }
  EXPECT_EQ(usage["total_tokens"].get<int>(),
            usage["prompt_tokens"].get<int>() + usage["completion_tokens"].get<int>());

  json body = image_question(24, true);
  body["stream_options"] = {{"include_usage", true}};
  const Streamed st = post_stream(s.port, "/v1/chat/completions", body);
  ASSERT_EQ(st.status, 200) << st.body;
  EXPECT_EQ(st.content_type.rfind("text/event-stream", 0), 0u) << st.content_type;
  EXPECT_TRUE(st.done);
  EXPECT_EQ(st.first_role, "assistant");
  EXPECT_EQ(st.text.at(0), answer);  // greedy: the same tokens, the same text
  EXPECT_EQ(st.finish_reason.at(0), reason);
  ASSERT_GE(st.chunks.size(), 3u);
  EXPECT_EQ(st.chunks.front()["object"], "chat.completion.chunk");
  EXPECT_EQ(st.chunks.front()["id"], st.chunks.back()["id"]);
  EXPECT_EQ(st.chunks.back()["usage"], usage);  // include_usage: the last chunk
  EXPECT_TRUE(st.chunks.back()["choices"].empty());
}

// The chat API gives the tokens transformers 4.44 generated for the same
// image and question (tests/fixtures/llava, case 0), as `mmfuse generate` does
// (tests/cli/generate_cli.sh), and adapter requests the adapter's tokens.
TEST(ServerChat, AnswersAreTheReferenceTokens) {
  RunningServer s(llava_config());
  for (const auto& [model, outputs] : {std::pair<std::string, std::string>{"llava", "llava-1.5-tiny"},
                                       {"llava+lora", "llava-1.5-tiny-lora"}}) {
    std::ifstream in(fixture("llava/outputs/" + outputs + "/outputs.json"));
    const json reference = json::parse(in)["cases"][0];
    json body = image_question(16, false);
    body["model"] = model;
    auto r = s.client().Post("/v1/chat/completions", body.dump(), "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const json whole = json_of(r);
    EXPECT_EQ(whole["choices"][0]["message"]["content"], reference["new_text"]) << model;
    EXPECT_EQ(whole["usage"]["prompt_tokens"], reference["lm_sequence_length"]) << model;
    EXPECT_EQ(whole["usage"]["completion_tokens"], 16) << model;
  }
}

// BLIP-2 folders serve the same route: the question goes through BLIP-2's
// question-answer format ("Question: ... Answer:", tests/fixtures/blip2 case 1)
// and gives transformers' tokens, as `mmfuse generate` does; one image exactly.
TEST(ServerChat, Blip2AnswersAndTakesOneImage) {
  server::ServerConfig c = llava_config();
  c.generative_models.clear();
  for (const char* folder : {"blip2-opt-tiny", "blip2-flan-t5-tiny"}) {
    server::GenerativeModelSpec spec;
    spec.name = folder;
    spec.dir = fixture(std::string("blip2/models/") + folder).string();
    c.generative_models.push_back(spec);
  }
  RunningServer s(c);
  for (const char* folder : {"blip2-opt-tiny", "blip2-flan-t5-tiny"}) {
    std::ifstream in(fixture(std::string("blip2/outputs/") + folder + "/outputs.json"));
    const json reference = json::parse(in)["cases"][1];
    const json image = {{"type", "image_url"}, {"image_url", {{"url", photo_url()}}}};
    json body = {{"model", folder},
                 {"messages",
                  json::array({{{"role", "user"},
                                {"content", json::array({image, {{"type", "text"},
                                                                 {"text", "what color is the bus?"}}})}}})},
                 {"max_tokens", 16},
                 {"temperature", 0}};
    auto r = s.client().Post("/v1/chat/completions", body.dump(), "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(json_of(r)["choices"][0]["message"]["content"], reference["generated_text"]) << folder;

    body["messages"][0]["content"] = json::array({image, image, {{"type", "text"}, {"text", "?"}}});
    r = s.client().Post("/v1/chat/completions", body.dump(), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << r->body;
    EXPECT_NE(r->body.find("exactly one image"), std::string::npos) << r->body;
  }
}

TEST(ServerChat, AdapterAndTextCompletions) {
  RunningServer s(llava_config());
  const json body = {{"model", "llava+lora"},
                     {"prompt", "USER: Hello ASSISTANT:"},
                     {"max_tokens", 8},
                     {"temperature", 0}};
  auto r = s.client().Post("/v1/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json whole = json_of(r);
  EXPECT_EQ(whole["object"], "text_completion");
  EXPECT_EQ(whole["model"], "llava+lora");
  const std::string text = whole["choices"][0]["text"];

  json streamed_body = body;
  streamed_body["stream"] = true;
  const Streamed st = post_stream(s.port, "/v1/completions", streamed_body);
  ASSERT_EQ(st.status, 200) << st.body;
  EXPECT_TRUE(st.done);
  EXPECT_EQ(st.text.at(0), text);
  EXPECT_EQ(st.chunks.front()["object"], "text_completion");
}

TEST(ServerChat, SeededSamplingRepeatsAndChoicesAreIndexed) {
  RunningServer s(llava_config());
  json body = image_question(12, false);
  body["temperature"] = 0.9;
  body["seed"] = 1234;
  body["n"] = 2;
  auto a = json_of(s.client().Post("/v1/chat/completions", body.dump(), "application/json"));
  auto b = json_of(s.client().Post("/v1/chat/completions", body.dump(), "application/json"));
  ASSERT_EQ(a["choices"].size(), 2u) << a.dump();
  EXPECT_EQ(a["choices"][1]["index"], 1);
  EXPECT_EQ(a["choices"], b["choices"]);  // the same seed, the same answers
  body["stream"] = true;
  const Streamed st = post_stream(s.port, "/v1/chat/completions", body);
  ASSERT_EQ(st.status, 200);
  EXPECT_EQ(st.text.at(0), a["choices"][0]["message"]["content"]);
  EXPECT_EQ(st.text.at(1), a["choices"][1]["message"]["content"]);
}

TEST(ServerChat, EightConcurrentClientsAllComplete) {
  RunningServer s(llava_config(/*max_running=*/4, /*max_queued=*/16));
  const json alone = json_of(s.client().Post("/v1/chat/completions",
                                             image_question(16, false).dump(), "application/json"));
  const std::string expected = alone["choices"][0]["message"]["content"];
  std::vector<std::thread> clients;
  std::vector<int> status(8, 0);
  std::vector<std::string> answers(8);
  for (int i = 0; i < 8; ++i)
    clients.emplace_back([&, i] {
      if (i % 2 == 0) {
        const Streamed st = post_stream(s.port, "/v1/chat/completions", image_question(16, true));
        status[i] = st.done ? st.status : -1;
        answers[i] = st.text.count(0) ? st.text.at(0) : "";
      } else {
        auto r = s.client().Post("/v1/chat/completions", image_question(16, false).dump(),
                                 "application/json");
        status[i] = r ? r->status : -1;
        if (r && r->status == 200) answers[i] = json_of(r)["choices"][0]["message"]["content"];
      }
    });
  for (auto& t : clients) t.join();
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(status[i], 200) << "client " << i;
    // Batched with others, each answer is the one it gets alone.
    EXPECT_EQ(answers[i], expected) << "client " << i;
  }
  EXPECT_NE(metric(s, "mmfuse_generations_total{model=\"llava\",finish_reason=\"length\"}") +
                metric(s, "mmfuse_generations_total{model=\"llava\",finish_reason=\"stop\"}"),
            "");
  EXPECT_NE(s.srv->metrics().render().find("mmfuse_generation_time_to_first_token_seconds_count{"
                                           "model=\"llava\"} 9"),
            std::string::npos);
  EXPECT_NE(s.srv->metrics().render().find("mmfuse_generation_running_sequences{model=\"llava\"}"),
            std::string::npos);
}

TEST(ServerChat, ClientDisconnectCancelsTheGeneration) {
  RunningServer s(llava_config());
  // Far more tokens than it could produce before the client leaves (min_tokens: no early end).
  json body = image_question(3000, true);
  body["min_tokens"] = 3000;
  const Streamed st = post_stream(s.port, "/v1/chat/completions", body, [](const Streamed& so_far) {
    return !(so_far.text.count(0) && !so_far.text.at(0).empty());  // leave after the first piece
  });
  EXPECT_EQ(st.status, 200);
  EXPECT_FALSE(st.done);
  const std::string cancelled =
      "mmfuse_generations_total{model=\"llava\",finish_reason=\"cancelled\"}";
  std::string count;
  for (int i = 0; i < 200 && count.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    count = metric(s, cancelled);
  }
  EXPECT_EQ(count, "1") << s.srv->metrics().render();
  const std::string tokens = metric(s, "mmfuse_generated_tokens_total{model=\"llava\"}");
  ASSERT_FALSE(tokens.empty());
  EXPECT_LT(std::stoi(tokens), 3000);
  EXPECT_EQ(metric(s, "mmfuse_generation_running_sequences{model=\"llava\"}"), "0");
}

TEST(ServerChat, QueueFullIs503WithRetryAfter) {
  RunningServer s(llava_config(/*max_running=*/1, /*max_queued=*/1));
  std::atomic<bool> started{false}, release{false};
  auto hold = [&](const Streamed&) {
    started = true;
    return !release.load();  // the client leaves (cancelling) once released
  };
  // One request decodes, a second waits in the queue: the third is refused.
  json endless = image_question(3000, true);
  endless["min_tokens"] = 3000;  // no early end of sequence: they run until released
  std::thread running([&] { post_stream(s.port, "/v1/chat/completions", endless, hold); });
  for (int i = 0; i < 1000 && !started; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(started);
  std::thread queued([&] { post_stream(s.port, "/v1/chat/completions", endless, hold); });
  for (int i = 0;
       i < 1000 && metric(s, "mmfuse_generation_queued_requests{model=\"llava\"}") != "1"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(metric(s, "mmfuse_generation_queued_requests{model=\"llava\"}"), "1");
  auto r =
      s.client().Post("/v1/chat/completions", image_question(4, false).dump(), "application/json");
  release = true;
  running.join();
  queued.join();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503) << r->body;
  EXPECT_EQ(r->get_header_value("Retry-After"), "1");
  EXPECT_EQ(error_type(r), "unavailable");
  EXPECT_EQ(metric(s, "mmfuse_queue_rejected_total{model=\"llava\"}"), "1");
}

TEST(ServerChat, BadRequestsAreJsonErrors) {
  RunningServer s(llava_config());
  auto c = s.client();
  auto post = [&](const json& body) {
    return c.Post("/v1/chat/completions", body.dump(), "application/json");
  };
  json body = image_question(4, false);
  body["temperature"] = "warm";
  auto r = post(body);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(error_type(r), "bad_request");
  EXPECT_NE(r->body.find("temperature"), std::string::npos) << r->body;

  body = image_question(5000, false);  // the prompt + 5000 > 4096 positions
  r = post(body);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("max_tokens"), std::string::npos) << r->body;

  body = image_question(4, false);
  body["model"] = "gpt-4o";
  r = post(body);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(error_type(r), "not_found");
  body["model"] = "llava+nope";
  r = post(body);
  EXPECT_EQ(r->status, 404);
  EXPECT_NE(r->body.find("nope"), std::string::npos);

  body = image_question(4, false);
  body["messages"][0]["content"][0]["image_url"]["url"] = "https://example.com/pump.jpg";
  r = post(body);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("allow_remote_images"), std::string::npos) << r->body;

  body = image_question(4, false);
  body["messages"][0]["content"][0]["image_url"]["url"] = "data:image/png;base64,aGVsbG8=";
  r = post(body);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("image"), std::string::npos) << r->body;

  body = image_question(4, false);
  body["tools"] = json::array({{{"type", "function"}}});
  r = post(body);
  EXPECT_EQ(r->status, 422);

  r = c.Post("/v1/chat/completions", "{not json", "application/json");
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(error_type(r), "bad_request");
}

}  // namespace mmfuse::test
