// The pure parts of the OpenAI generation routes: request parsing and
// validation, GenerationConfig over the folder defaults, response and SSE
// chunk shapes, UTF-8-safe incremental detokenisation and stop-string
// hold-back. No model is loaded (a small tokenizer double stands in).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "mmfuse/error.h"
#include "server/chat_request.h"
#include "server/chat_response.h"
#include "server/image_source.h"
#include "server/metrics.h"
#include "server/server_config.h"
#include "generate/text_stream.h"
#include "test_util.h"

namespace mmfuse::test {

using nlohmann::json;
using namespace mmfuse::server;

namespace {

// The message of the mmfuse::Error that `f` throws (and its kind), "" if none.
template <typename F>
std::string error_of(F f, ErrorKind* kind = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (kind) *kind = e.kind();
    return e.what();
  }
  return "";
}

json chat_body(json extra = json::object()) {
  json body = {{"model", "llava"},
               {"messages", json::array({{{"role", "user"}, {"content", "Hello"}}})}};
  for (auto& [k, v] : extra.items()) body[k] = v;
  return body;
}

// Pieces as a SentencePiece tokenizer with byte fallback decodes them: ids
// 0-2 are <unk>, <s>, </s>; "<0xNN>" pieces are raw bytes; bytes that do not
// form a whole UTF-8 character decode to U+FFFD each.
class PieceTokenizer : public GenerativeTokenizer {
 public:
  explicit PieceTokenizer(std::vector<std::string> pieces) : pieces_(std::move(pieces)) {}
  std::vector<int32_t> encode(const std::string&, bool) const override { return {}; }
  std::vector<std::string> tokenize(const std::string&) const override { return {}; }
  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const override {
    std::string bytes;
    for (int32_t id : ids) {
      if (id < 0 || size_t(id) >= pieces_.size())
        throw_error(ErrorKind::bad_input, "decode: unknown id " + std::to_string(id));
      if (id < 3 && skip_special) continue;
      const std::string& p = pieces_[size_t(id)];
      if (p.size() == 6 && p.rfind("<0x", 0) == 0)
        bytes += char(std::stoi(p.substr(3, 2), nullptr, 16));
      else
        bytes += p;
    }
    // Replace each byte of an incomplete or invalid sequence with U+FFFD.
    std::string out;
    for (size_t i = 0; i < bytes.size();) {
      const auto b = static_cast<unsigned char>(bytes[i]);
      const size_t len = b < 0x80             ? 1
                         : (b & 0xE0) == 0xC0 ? 2
                         : (b & 0xF0) == 0xE0 ? 3
                         : (b & 0xF8) == 0xF0 ? 4
                                              : 0;
      bool whole = len > 0 && i + len <= bytes.size();
      for (size_t k = 1; whole && k < len; ++k)
        whole = (static_cast<unsigned char>(bytes[i + k]) & 0xC0) == 0x80;
      if (whole) {
        out += bytes.substr(i, len);
        i += len;
      } else {
        out += "\xEF\xBF\xBD";
        ++i;
      }
    }
    return out;
  }
  std::string id_to_token(int32_t id) const override { return pieces_.at(size_t(id)); }
  int32_t token_to_id(const std::string& t) const override {
    for (size_t i = 0; i < pieces_.size(); ++i)
      if (pieces_[i] == t) return int32_t(i);
    return -1;
  }
  size_t size() const override { return pieces_.size(); }
  bool is_special(int32_t id) const override { return id < 3; }
  int32_t bos_id() const override { return 1; }
  int32_t eos_id() const override { return 2; }
  int32_t pad_id() const override { return -1; }
  int32_t unk_id() const override { return 0; }
  std::string special_token(const std::string&) const override { return ""; }

 private:
  std::vector<std::string> pieces_;
};

// "你" is E4 BD A0; "😀" is F0 9F 98 80.
PieceTokenizer pieces() {
  return PieceTokenizer({"<unk>", "<s>", "</s>", "Hello", " wor", "ld", "!", " ST", "OP", " S",
                         "<0xE4>", "<0xBD>", "<0xA0>", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>",
                         " end", "\n"});
}
enum : int32_t {
  kEos = 2,
  kHello = 3,
  kWor = 4,
  kLd = 5,
  kBang = 6,
  kSt = 7,
  kOp = 8,
  kS = 9,
  kE4 = 10,
  kBD = 11,
  kA0 = 12,
  kF0 = 13,
  k9F = 14,
  k98 = 15,
  k80 = 16,
  kEnd = 17,
  kNl = 18
};

std::string pushed(TextStream& s, const std::vector<int32_t>& ids) {
  std::string out;
  for (int32_t id : ids) out += s.push(id);
  return out;
}

}  // namespace

// --- request parsing -------------------------------------------------------

TEST(ChatRequest, ParsesMessagesPartsAndImagesInOrder) {
  const json body = {
      {"model", "llava-1.5+medical"},
      {"messages",
       json::array(
           {{{"role", "system"}, {"content", "Be brief."}},
            {{"role", "user"},
             {"content",
              json::array(
                  {{{"type", "text"}, {"text", "What is this?"}},
                   {{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64,AAAA"}}}},
                   {{"type", "image_url"}, {"image_url", "data:image/png;base64,BBBB"}}})}},
            {{"role", "assistant"}, {"content", "A pump."}}})},
      {"max_tokens", 32},
      {"temperature", 0.5},
      {"stop", "###"},
      {"stream", true},
      {"stream_options", {{"include_usage", true}}},
      {"user", "ignored"}};
  const ChatRequest r = parse_chat_request(body, {});
  EXPECT_EQ(r.model, "llava-1.5+medical");
  ASSERT_EQ(r.messages.size(), 3u);
  ASSERT_EQ(r.image_urls.size(), 2u);
  EXPECT_EQ(r.image_urls[0], "data:image/png;base64,AAAA");
  EXPECT_EQ(r.image_urls[1], "data:image/png;base64,BBBB");
  EXPECT_EQ(r.sampling.max_tokens, 32);
  EXPECT_FLOAT_EQ(*r.sampling.temperature, 0.5f);
  EXPECT_EQ(r.sampling.stop, std::vector<std::string>{"###"});
  EXPECT_TRUE(r.sampling.stream);
  EXPECT_TRUE(r.sampling.include_usage);
  EXPECT_EQ(r.sampling.n, 1u);
  EXPECT_FALSE(r.sampling.top_p.has_value());
}

TEST(ChatRequest, MaxCompletionTokensWinsAndWholeFloatsAreIntegers) {
  const ChatRequest r = parse_chat_request(chat_body({{"max_tokens", 10},
                                                      {"max_completion_tokens", 20.0},
                                                      {"seed", -1},
                                                      {"stop", {"a", "b"}},
                                                      {"n", 3}}),
                                           {});
  EXPECT_EQ(r.sampling.max_tokens, 20);
  EXPECT_EQ(r.sampling.seed, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(r.sampling.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.sampling.n, 3u);
}

TEST(ChatRequest, BadFieldsAreBadInputNamingTheField) {
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"model", "x"}}, "messages: missing"},
      {{{"messages", json::array()}}, "messages: expected a non-empty list"},
      {{{"messages", {{{"role", "robot"}, {"content", "x"}}}}}, "messages[0].role"},
      {{{"messages", {{{"role", "user"}}}}}, "messages[0].content: missing"},
      {{{"messages", {{{"role", "user"}, {"content", 5}}}}}, "messages[0].content"},
      {{{"messages", {{{"role", "user"}, {"content", {{{"type", "audio"}}}}}}}},
       "messages[0].content[0].type"},
      {{{"messages", {{{"role", "user"}, {"content", {{{"type", "text"}, {"text", 1}}}}}}}},
       "messages[0].content[0].text"},
      {{{"messages", {{{"role", "user"}, {"content", {{{"type", "image_url"}}}}}}}},
       "messages[0].content[0].image_url: missing"},
      {{{"messages",
         {{{"role", "assistant"},
           {"content", {{{"type", "image_url"}, {"image_url", {{"url", "data:,"}}}}}}}}}},
       "messages[0].content[0]: images are only accepted in user messages"},
      {chat_body({{"model", 3}}), "model: expected a string"},
      {chat_body({{"temperature", "hot"}}), "temperature: expected a number"},
      {chat_body({{"temperature", -0.1}}), "temperature: must be"},
      {chat_body({{"top_p", 0}}), "top_p: must be above 0"},
      {chat_body({{"top_p", 1.5}}), "top_p"},
      {chat_body({{"top_k", -2}}), "top_k"},
      {chat_body({{"min_p", 2}}), "min_p"},
      {chat_body({{"repetition_penalty", 0}}), "repetition_penalty"},
      {chat_body({{"max_tokens", 0}}), "max_tokens: must be between 1"},
      {chat_body({{"max_tokens", 2.5}}), "max_tokens: expected an integer"},
      {chat_body({{"max_completion_tokens", "many"}}), "max_completion_tokens"},
      {chat_body({{"seed", 1.5}}), "seed: expected an integer"},
      {chat_body({{"stop", {"ok", 3}}}), "stop[1]: expected a string"},
      {chat_body({{"stop", ""}}), "stop: empty string"},
      {chat_body({{"stop", 7}}), "stop: expected a string or a list"},
      {chat_body({{"n", 0}}), "n: must be between 1 and 8"},
      {chat_body({{"n", 9}}), "n: must be between 1 and 8"},
      {chat_body({{"stream", "yes"}}), "stream: expected true or false"},
      {chat_body({{"stream_options", {{"include_usage", true}}}}),
       "stream_options: only allowed with \"stream\": true"},
  };
  for (const auto& [body, expected] : cases) {
    ErrorKind kind = ErrorKind::internal;
    const json& request = body;  // clang 14 cannot capture a structured binding
    const std::string message = error_of([&] { parse_chat_request(request, {}); }, &kind);
    EXPECT_NE(message.find(expected), std::string::npos)
        << body.dump() << " gave \"" << message << "\", expected \"" << expected << "\"";
    EXPECT_EQ(kind, ErrorKind::bad_input) << body.dump();
  }
}

TEST(ChatRequest, UnsupportedOpenAiFeaturesAreUnsupported) {
  for (const json& extra :
       {json{{"tools", {{{"type", "function"}}}}}, json{{"logprobs", true}},
        json{{"presence_penalty", 0.5}}, json{{"frequency_penalty", -1}},
        json{{"response_format", {{"type", "json_object"}}}}, json{{"logit_bias", {{"1", 5}}}}}) {
    ErrorKind kind = ErrorKind::internal;
    const std::string message = error_of([&] { parse_chat_request(chat_body(extra), {}); }, &kind);
    EXPECT_EQ(kind, ErrorKind::unsupported) << extra.dump() << ": " << message;
    EXPECT_NE(message.find(extra.begin().key()), std::string::npos) << message;
  }
  // Asking for nothing is fine (clients send these defaults).
  EXPECT_NO_THROW(parse_chat_request(
      chat_body({{"presence_penalty", 0}, {"logprobs", false}, {"tools", json::array()}}), {}));
  ErrorKind kind = ErrorKind::internal;
  error_of(
      [&] {
        parse_chat_request(chat_body({{"messages", {{{"role", "tool"}, {"content", "x"}}}}}), {});
      },
      &kind);
  EXPECT_EQ(kind, ErrorKind::unsupported);
}

TEST(ChatRequest, ImageCountLimit) {
  json parts = json::array();
  for (int i = 0; i < 3; ++i)
    parts.push_back({{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64,AA"}}}});
  const json body = {{"messages", {{{"role", "user"}, {"content", parts}}}}};
  RequestLimits limits;
  limits.max_images = 2;
  EXPECT_NE(error_of([&] { parse_chat_request(body, limits); }).find("3 images, the limit is 2"),
            std::string::npos);
  limits.max_images = 3;
  EXPECT_EQ(parse_chat_request(body, limits).image_urls.size(), 3u);
}

TEST(CompletionRequest, PromptForms) {
  EXPECT_EQ(parse_completion_request({{"prompt", "USER: hi ASSISTANT:"}}, {}).prompt,
            "USER: hi ASSISTANT:");
  EXPECT_EQ(parse_completion_request({{"prompt", {"one"}}}, {}).prompt, "one");
  EXPECT_NE(error_of([] {
              parse_completion_request({{"model", "m"}}, {});
            }).find("prompt: missing"),
            std::string::npos);
  ErrorKind kind = ErrorKind::internal;
  error_of([] { parse_completion_request({{"prompt", {1, 2, 3}}}, {}); }, &kind);
  EXPECT_EQ(kind, ErrorKind::unsupported);
  EXPECT_NE(error_of([] {
              parse_completion_request({{"prompt", {"a", "b"}}}, {});
            }).find("prompt:"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              parse_completion_request({{"prompt", "x"}, {"echo", true}}, {});
            }).find("echo"),
            std::string::npos);
}

TEST(ChatRequest, ModelIds) {
  EXPECT_EQ(split_model_id("llava-1.5").base, "llava-1.5");
  EXPECT_EQ(split_model_id("llava-1.5").adapter, "");
  EXPECT_EQ(split_model_id("llava-1.5+medical").base, "llava-1.5");
  EXPECT_EQ(split_model_id("llava-1.5+medical").adapter, "medical");
}

// --- GenerationConfig ------------------------------------------------------

TEST(ChatGenerationConfig, RequestOverFolderDefaults) {
  GenerationConfig defaults;
  defaults.eos_token_ids = {2};
  defaults.repetition_penalty = 1.1f;
  defaults.num_beams = 4;  // a folder default beam search is not used by the API
  SamplingRequest r;
  // No sampling fields: the folder's greedy default, its repetition penalty,
  // the rest of the context as the budget.
  GenerationConfig c = generation_config_for(r, defaults, 100, 4096);
  EXPECT_FALSE(c.do_sample);
  EXPECT_EQ(c.num_beams, 1);
  EXPECT_FLOAT_EQ(c.repetition_penalty, 1.1f);
  EXPECT_EQ(c.max_new_tokens, 3996);
  EXPECT_EQ(c.eos_token_ids, std::vector<int32_t>{2});

  defaults.max_new_tokens = 64;
  EXPECT_EQ(generation_config_for(r, defaults, 100, 4096).max_new_tokens, 64);
  EXPECT_EQ(generation_config_for(r, defaults, 4090, 4096).max_new_tokens, 6);

  r.temperature = 0.7f;
  r.top_k = -1;
  r.seed = 10;
  r.max_tokens = 5;
  r.stop = {"###"};
  r.repetition_penalty = 1.3f;
  c = generation_config_for(r, defaults, 100, 4096, /*choice_index=*/2);
  EXPECT_TRUE(c.do_sample);
  EXPECT_FLOAT_EQ(c.temperature, 0.7f);
  EXPECT_EQ(c.top_k, 0);
  EXPECT_EQ(c.seed, 12u);  // seed + choice index
  EXPECT_EQ(c.max_new_tokens, 5);
  EXPECT_EQ(c.stop_strings, std::vector<std::string>{"###"});
  EXPECT_FLOAT_EQ(c.repetition_penalty, 1.3f);

  r.temperature = 0.0f;  // OpenAI's way of asking for greedy
  EXPECT_FALSE(generation_config_for(r, defaults, 100, 4096).do_sample);
  SamplingRequest only_top_p;
  only_top_p.top_p = 0.9f;
  c = generation_config_for(only_top_p, GenerationConfig{}, 10, 100);
  EXPECT_TRUE(c.do_sample);
  EXPECT_FLOAT_EQ(c.top_p, 0.9f);
}

TEST(ChatGenerationConfig, BeyondTheContextIsBadInputNamingMaxTokens) {
  SamplingRequest r;
  r.max_tokens = 100;
  ErrorKind kind = ErrorKind::internal;
  const std::string m =
      error_of([&] { generation_config_for(r, GenerationConfig{}, 4000, 4096); }, &kind);
  EXPECT_EQ(kind, ErrorKind::bad_input);
  EXPECT_NE(m.find("max_tokens"), std::string::npos) << m;
  EXPECT_NE(m.find("4096"), std::string::npos) << m;
  EXPECT_NO_THROW(generation_config_for(r, GenerationConfig{}, 3996, 4096));
  r.max_tokens.reset();
  EXPECT_NE(error_of([&] {
              generation_config_for(r, GenerationConfig{}, 4096, 4096);
            }).find("the model's context is 4096"),
            std::string::npos);
}

// --- responses and SSE -----------------------------------------------------

TEST(ChatResponse, CompletionObjects) {
  const Json chat =
      completion_response(CompletionKind::chat, "chatcmpl-1", 1700000000, "llava",
                          {{0, "A pump.", "stop"}, {1, "A valve", "length"}}, {600, 7});
  EXPECT_EQ(chat["object"], "chat.completion");
  EXPECT_EQ(chat["id"], "chatcmpl-1");
  EXPECT_EQ(chat["created"], 1700000000);
  EXPECT_EQ(chat["model"], "llava");
  ASSERT_EQ(chat["choices"].size(), 2u);
  EXPECT_EQ(chat["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(chat["choices"][0]["message"]["content"], "A pump.");
  EXPECT_EQ(chat["choices"][1]["index"], 1);
  EXPECT_EQ(chat["choices"][1]["finish_reason"], "length");
  EXPECT_EQ(chat["usage"]["prompt_tokens"], 600);
  EXPECT_EQ(chat["usage"]["completion_tokens"], 7);
  EXPECT_EQ(chat["usage"]["total_tokens"], 607);

  const Json text =
      completion_response(CompletionKind::text, "cmpl-1", 1, "m", {{0, "x", "stop"}}, {3, 1});
  EXPECT_EQ(text["object"], "text_completion");
  EXPECT_EQ(text["choices"][0]["text"], "x");
  EXPECT_FALSE(text["choices"][0].contains("message"));

  EXPECT_EQ(new_completion_id(CompletionKind::chat).rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(new_completion_id(CompletionKind::text).size(), 5u + 24u);
  EXPECT_NE(new_completion_id(CompletionKind::chat), new_completion_id(CompletionKind::chat));
}

TEST(ChatResponse, ChunksAndEvents) {
  const Json first =
      completion_chunk(CompletionKind::chat, "c", 5, "llava", 0, "assistant", "", std::nullopt);
  EXPECT_EQ(sse_event(first),
            "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":"
            "\"llava\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":"
            "\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
  const Json piece =
      completion_chunk(CompletionKind::chat, "c", 5, "llava", 1, std::nullopt, "你", std::nullopt);
  EXPECT_EQ(piece["choices"][0]["index"], 1);
  EXPECT_FALSE(piece["choices"][0]["delta"].contains("role"));
  EXPECT_EQ(piece["choices"][0]["delta"]["content"], "你");
  const Json last = completion_chunk(CompletionKind::chat, "c", 5, "llava", 0, std::nullopt,
                                     std::nullopt, "stop");
  EXPECT_TRUE(last["choices"][0]["delta"].empty());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  const Json text =
      completion_chunk(CompletionKind::text, "t", 5, "m", 0, std::nullopt, "ab", std::nullopt);
  EXPECT_EQ(text["object"], "text_completion");
  EXPECT_EQ(text["choices"][0]["text"], "ab");
  EXPECT_TRUE(text["choices"][0]["finish_reason"].is_null());
  const Json usage = usage_chunk(CompletionKind::chat, "c", 5, "llava", {10, 4});
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 14);
  // Invalid UTF-8 never breaks an event (replaced, not thrown).
  const std::string bad = sse_event(
      completion_chunk(CompletionKind::text, "t", 5, "m", 0, std::nullopt, "a\xE4", std::nullopt));
  EXPECT_NE(bad.find("a\xEF\xBF\xBD"), std::string::npos);
  EXPECT_EQ(std::string(kSseDone), "data: [DONE]\n\n");
}

// --- incremental detokenisation -------------------------------------------

TEST(TextStream, Utf8Helpers) {
  EXPECT_EQ(utf8_complete_prefix(""), 0u);
  EXPECT_EQ(utf8_complete_prefix("abc"), 3u);
  EXPECT_EQ(utf8_complete_prefix("a\xE4"), 1u);
  EXPECT_EQ(utf8_complete_prefix("a\xE4\xBD"), 1u);
  EXPECT_EQ(utf8_complete_prefix("a\xE4\xBD\xA0"), 4u);
  EXPECT_EQ(utf8_complete_prefix("\xF0\x9F\x98"), 0u);
  EXPECT_EQ(utf8_complete_prefix("\xF0\x9F\x98\x80"), 4u);
  EXPECT_EQ(utf8_complete_prefix("a\xBF"), 2u);  // a stray continuation byte: nothing to wait for
  EXPECT_EQ(without_trailing_replacement("ab\xEF\xBF\xBD\xEF\xBF\xBD"), 2u);
  EXPECT_EQ(without_trailing_replacement("a\xEF\xBF\xBD"
                                         "b"),
            5u);
}

TEST(TextStream, StopScan) {
  const std::vector<std::string> stops = {"world", "STOP"};
  StopScan s = scan_stop_strings("Hello wor", stops);
  EXPECT_FALSE(s.stopped);
  EXPECT_EQ(s.end, 6u);  // "wor" could become "world"
  s = scan_stop_strings("Hello world!", stops);
  EXPECT_TRUE(s.stopped);
  EXPECT_EQ(s.end, 6u);
  s = scan_stop_strings("a STOP b world", stops);  // the earliest one
  EXPECT_TRUE(s.stopped);
  EXPECT_EQ(s.end, 2u);
  s = scan_stop_strings("Hello S", stops);
  EXPECT_EQ(s.end, 6u);
  s = scan_stop_strings("Hello", {});
  EXPECT_EQ(s.end, 5u);
  s = scan_stop_strings("abab", {"abac"});  // the longest proper prefix held
  EXPECT_EQ(s.end, 2u);
}

TEST(TextStream, NeverSplitsAUtf8Character) {
  const PieceTokenizer tok = pieces();
  TextStream s(tok, {});
  EXPECT_EQ(s.push(kHello), "Hello");
  EXPECT_EQ(s.push(kE4), "");  // decodes to U+FFFD for now: held
  EXPECT_EQ(s.push(kBD), "");
  EXPECT_EQ(s.push(kA0), "你");
  EXPECT_EQ(s.push(kF0), "");
  EXPECT_EQ(s.push(k9F), "");
  EXPECT_EQ(s.push(k98), "");
  EXPECT_EQ(s.push(k80), "😀");
  EXPECT_EQ(s.push(kEos), "");  // special tokens are not shown
  EXPECT_EQ(s.finish(), "");
  EXPECT_EQ(s.shown(), "Hello你😀");
  EXPECT_FALSE(s.stopped());
}

TEST(TextStream, HoldsBackAPossibleStopStringAndCutsAtIt) {
  const PieceTokenizer tok = pieces();
  TextStream s(tok, {" STOP"});
  EXPECT_EQ(s.push(kHello), "Hello");
  EXPECT_EQ(s.push(kSt), "");  // " ST" may start " STOP"
  EXPECT_EQ(s.push(kOp), "");  // it did: the answer ends before it
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.push(kEnd), "");  // nothing after a stop
  EXPECT_EQ(s.finish(), "");
  EXPECT_EQ(s.shown(), "Hello");

  TextStream t(tok, {" STOP"});
  EXPECT_EQ(pushed(t, {kHello, kS}), "Hello");  // " S" held
  EXPECT_EQ(t.push(kWor), " S wor");            // " S wor" cannot start " STOP" any more
  EXPECT_EQ(t.push(kSt), "");
  EXPECT_EQ(t.finish(), " ST");  // never completed: released at the end
  EXPECT_FALSE(t.stopped());
  EXPECT_EQ(t.shown(), "Hello S wor ST");
}

TEST(TextStream, StreamedPiecesConcatenateToTheWholeAnswer) {
  const PieceTokenizer tok = pieces();
  const std::vector<std::vector<int32_t>> answers = {
      {kHello, kWor, kLd, kBang, kEos},
      {kHello, kE4, kBD, kA0, kSt, kOp, kEnd},
      {kF0, k9F, k98, k80, kS, kNl, kSt, kWor, kLd},
      {kE4, kBD},  // ends inside a character: the replacement shows at the end
      {kSt, kSt, kOp, kBang},
  };
  const std::vector<std::vector<std::string>> stop_sets = {{}, {" STOP"}, {"ld", "\n"}, {"!"}};
  for (const auto& ids : answers)
    for (const auto& stops : stop_sets) {
      TextStream s(tok, stops);
      std::string streamed = pushed(s, ids);
      streamed += s.finish();
      bool stopped = false;
      const std::string whole = final_text(tok, ids, stops, &stopped);
      EXPECT_EQ(streamed, whole) << "answer of " << ids.size() << " tokens, " << stops.size()
                                 << " stops";
      EXPECT_EQ(s.stopped(), stopped);
      for (const auto& stop : stops) EXPECT_EQ(streamed.find(stop), std::string::npos);
    }
}

// --- metrics and configuration --------------------------------------------

TEST(ChatMetrics, GenerationSeriesInTheExposition) {
  Metrics m;
  m.observe_first_token("llava", 0.2);
  m.observe_generation("llava", "stop", 11, 0.5);       // 10 tokens after the first in 0.5 s
  m.observe_generation("llava", "cancelled", 3, 0.01);  // 200 tokens/s
  const std::string text = m.render();
  EXPECT_NE(
      text.find(
          "mmfuse_generation_time_to_first_token_seconds_bucket{model=\"llava\",le=\"0.25\"} 1"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("mmfuse_generation_tokens_per_second_bucket{model=\"llava\",le=\"20\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("mmfuse_generated_tokens_total{model=\"llava\"} 14"), std::string::npos);
  EXPECT_NE(text.find("mmfuse_generations_total{model=\"llava\",finish_reason=\"cancelled\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE mmfuse_generation_time_to_first_token_seconds histogram"),
            std::string::npos);
}

TEST(ChatConfig, GenerativeModelsInTheYaml) {
  const auto dir = std::filesystem::temp_directory_path() / "mmfuse_chat_config";
  std::filesystem::create_directories(dir);
  const std::string llava = fixture("llava/models/llava-1.5-tiny").string();
  const std::string lora = fixture("llava/models/llava-1.5-tiny-lora").string();
  const auto write = [&](const std::string& text) {
    std::ofstream(dir / "serve.yaml") << text;
    return dir / "serve.yaml";
  };
  ServerConfig c =
      load_server_config(write("generative_models:\n"
                               "  llava:\n"
                               "    path: " +
                               llava +
                               "\n"
                               "    adapters: {medical: " +
                               lora +
                               "}\n"
                               "    max_running: 4\n"
                               "    max_queued: 2\n"
                               "    allow_remote_images: true\n"
                               "    dtype: int8\n"
                               "  plain: " +
                               llava +
                               "\n"
                               "limits: {generation_timeout_s: 60, max_images: 2}\n"));
  ASSERT_EQ(c.generative_models.size(), 2u);
  EXPECT_EQ(c.generative_models[0].name, "llava");
  EXPECT_EQ(c.generative_models[0].dir, llava);
  ASSERT_EQ(c.generative_models[0].adapters.size(), 1u);
  EXPECT_EQ(c.generative_models[0].adapters[0].first, "medical");
  EXPECT_EQ(c.generative_models[0].max_running, 4u);
  EXPECT_EQ(c.generative_models[0].max_queued, 2u);
  EXPECT_TRUE(c.generative_models[0].allow_remote_images);
  EXPECT_FALSE(c.generative_models[1].allow_remote_images);  // off by default
  EXPECT_EQ(c.generative_models[0].precision, Precision::int8);
  EXPECT_EQ(c.generative_models[1].precision, Precision::f32);  // weights as stored
  EXPECT_EQ(c.generative_models[1].adapters.size(), 0u);
  EXPECT_EQ(c.limits.generation_timeout_s, 60);
  EXPECT_EQ(c.limits.max_images, 2u);

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"generative_models:\n  llava:\n    path: " + llava + "\n    max_runing: 4\n",
       "serve.yaml:4: generative_models.llava.max_runing: unknown key"},
      {"generative_models:\n  llava:\n    adapters: {}\n", "generative_models.llava.path: missing"},
      {"generative_models:\n  a+b: " + llava + "\n", "cannot contain \"+\""},
      {"generative_models:\n  llava:\n    path: " + llava + "\n    adapters: {x: /nonexistent}\n",
       "generative_models.llava.adapters.x"},
      {"generative_models:\n  llava:\n    path: " + llava + "\n    adapters: {x: " + llava + "}\n",
       "has no adapter_config.json"},
      {"models:\n  llava: " + fixture("clip/models/clip-tiny-quickgelu-p32").string() +
           "\ngenerative_models:\n  llava: " + llava + "\n",
       "already used"},
      {"generative_models:\n  llava:\n    path: " + llava + "\n    max_running: 0\n",
       "generative_models.llava.max_running: must be between 1"},
      {"generative_models:\n  llava:\n    path: " + llava + "\n    dtype: bf16\n",
       "generative_models.llava.dtype: expected f32 or int8"},
  };
  for (const auto& [yaml, expected] : bad) {
    const std::string& text = yaml;  // clang 14 cannot capture a structured binding
    const std::string m = error_of([&] { load_server_config(write(text)); });
    EXPECT_NE(m.find(expected), std::string::npos) << yaml << "\ngave: " << m;
  }
  std::filesystem::remove_all(dir);
}

TEST(ChatImages, OnlyDataUrlsUnlessRemoteImagesAreAllowed) {
  ImageSourcePolicy policy;
  const std::string field = "messages[0].content[1].image_url.url";
  for (const std::string url :
       {"http://example.com/a.png", "https://example.com/a.png", "file:///etc/passwd"}) {
    ErrorKind kind = ErrorKind::internal;
    const std::string m = error_of([&] { image_url_bytes(url, field, policy); }, &kind);
    EXPECT_EQ(kind, ErrorKind::bad_input) << url;
    EXPECT_NE(m.find(field), std::string::npos) << m;
    EXPECT_NE(m.find("allow_remote_images"), std::string::npos) << m;
  }
  EXPECT_EQ(image_url_bytes("data:image/png;base64,AAEC", field, policy),
            (std::vector<uint8_t>{0, 1, 2}));
  EXPECT_NE(
      error_of([&] { image_url_bytes("data:image/png;base64,A!", field, policy); }).find(field),
      std::string::npos);
  EXPECT_NE(error_of([&] { image_url_bytes("ftp://x/y.png", field, policy); }).find("data: URL"),
            std::string::npos);
  // Allowed: a local file through a file:// URL.
  policy.allow_remote = true;
  const auto photo = fixture("photos/bus.jpg");
  EXPECT_EQ(
      image_url_bytes("file://" + std::filesystem::absolute(photo).string(), field, policy).size(),
      std::filesystem::file_size(photo));
  EXPECT_NE(
      error_of([&] { image_url_bytes("file://relative.png", field, policy); }).find("absolute"),
      std::string::npos);
  policy.max_bytes = 10;
  EXPECT_NE(error_of([&] {
              image_url_bytes("file://" + std::filesystem::absolute(photo).string(), field, policy);
            }).find("over the limit"),
            std::string::npos);
}

}  // namespace mmfuse::test
