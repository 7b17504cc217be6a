// Parsing and validation of the OpenAI generation request bodies.
#include "server/chat_request.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "mmfuse/error.h"

namespace mmfuse::server {

namespace {

using nlohmann::json;

std::string number_text(double v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

bool present(const json& body, const char* field) {
  return body.contains(field) && !body[field].is_null();
}

std::optional<float> number_field(const json& body, const char* field, double lo, double hi,
                                  bool lo_open = false) {
  if (!present(body, field)) return std::nullopt;
  const json& v = body[field];
  MMFUSE_CHECK(v.is_number(), bad_input, std::string(field) + ": expected a number");
  const double x = v.get<double>();
  const bool above = lo_open ? x > lo : x >= lo;
  MMFUSE_CHECK(std::isfinite(x) && above && x <= hi, bad_input,
               std::string(field) + ": must be " + (lo_open ? "above " : "at least ") +
                   number_text(lo) + " and at most " + number_text(hi) + ", got " + number_text(x));
  return static_cast<float>(x);
}

std::optional<int64_t> integer_field(const json& body, const char* field, int64_t lo, int64_t hi) {
  if (!present(body, field)) return std::nullopt;
  const json& v = body[field];
  // 3.0 is accepted as 3 (JavaScript clients send whole floats), 3.5 is not.
  int64_t x = 0;
  if (v.is_number_integer()) {
    x = v.get<int64_t>();
  } else if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    x = u > uint64_t(std::numeric_limits<int64_t>::max()) ? std::numeric_limits<int64_t>::max()
                                                          : int64_t(u);
  } else if (v.is_number_float() && std::isfinite(v.get<double>()) &&
             std::floor(v.get<double>()) == v.get<double>() && std::fabs(v.get<double>()) < 9e15) {
    x = static_cast<int64_t>(v.get<double>());
  } else {
    throw_error(ErrorKind::bad_input, std::string(field) + ": expected an integer");
  }
  MMFUSE_CHECK(x >= lo && x <= hi, bad_input,
               std::string(field) + ": must be between " + std::to_string(lo) + " and " +
                   std::to_string(hi) + ", got " + std::to_string(x));
  return x;
}

bool bool_field(const json& body, const char* field, bool fallback) {
  if (!present(body, field)) return fallback;
  MMFUSE_CHECK(body[field].is_boolean(), bad_input,
               std::string(field) + ": expected true or false");
  return body[field].get<bool>();
}

std::string model_field(const json& body) {
  if (!present(body, "model")) return "";
  MMFUSE_CHECK(body["model"].is_string(), bad_input, "model: expected a string");
  return body["model"].get<std::string>();
}

// OpenAI fields mmfuse does not implement: refused unless they ask for nothing.
void refuse_unsupported(const json& body) {
  for (const char* field : {"presence_penalty", "frequency_penalty"})
    if (present(body, field)) {
      MMFUSE_CHECK(body[field].is_number(), bad_input, std::string(field) + ": expected a number");
      MMFUSE_CHECK(body[field].get<double>() == 0.0, unsupported,
                   std::string(field) + ": not supported (use repetition_penalty)");
    }
  if (present(body, "logprobs")) {
    const json& v = body["logprobs"];
    MMFUSE_CHECK(v.is_boolean() || v.is_number_integer(), bad_input,
                 "logprobs: expected true or false");
    MMFUSE_CHECK(v.is_boolean() ? !v.get<bool>() : v.get<int64_t>() == 0, unsupported,
                 "logprobs: not supported");
  }
  MMFUSE_CHECK(!present(body, "top_logprobs") || body["top_logprobs"] == 0, unsupported,
               "top_logprobs: not supported");
  MMFUSE_CHECK(!present(body, "tools") || (body["tools"].is_array() && body["tools"].empty()),
               unsupported, "tools: tool calls are not supported");
  MMFUSE_CHECK(!present(body, "functions"), unsupported, "functions: not supported");
  MMFUSE_CHECK(!present(body, "logit_bias") ||
                   (body["logit_bias"].is_object() && body["logit_bias"].empty()),
               unsupported, "logit_bias: not supported");
  MMFUSE_CHECK(!present(body, "best_of") || body["best_of"] == 1, unsupported,
               "best_of: not supported");
  if (present(body, "response_format")) {
    const json& f = body["response_format"];
    MMFUSE_CHECK(f.is_object() && f.contains("type") && f["type"].is_string(), bad_input,
                 "response_format: expected {\"type\": \"text\"}");
    MMFUSE_CHECK(f["type"] == "text", unsupported,
                 "response_format.type: only \"text\" is supported");
  }
}

void check_image_url(const json& part, const std::string& field, std::vector<std::string>& urls) {
  MMFUSE_CHECK(part.contains("image_url"), bad_input, field + ".image_url: missing");
  const json& iu = part["image_url"];
  std::string url;
  if (iu.is_string()) {
    url = iu.get<std::string>();  // some clients send the URL itself
  } else {
    MMFUSE_CHECK(iu.is_object() && iu.contains("url") && iu["url"].is_string(), bad_input,
                 field + ".image_url: expected {\"url\": \"data:image/...;base64,...\"}");
    url = iu["url"].get<std::string>();
    if (iu.contains("detail") && !iu["detail"].is_null())
      MMFUSE_CHECK(iu["detail"].is_string(), bad_input,
                   field + ".image_url.detail: expected a string");
  }
  MMFUSE_CHECK(!url.empty(), bad_input, field + ".image_url.url: empty");
  urls.push_back(std::move(url));
}

}  // namespace

SamplingRequest parse_sampling(const json& body, const RequestLimits& limits) {
  refuse_unsupported(body);
  SamplingRequest s;
  constexpr int64_t kMaxTokens = 1 << 24;
  if (auto v = integer_field(body, "max_tokens", 1, kMaxTokens)) s.max_tokens = int(*v);
  if (auto v = integer_field(body, "max_completion_tokens", 1, kMaxTokens)) s.max_tokens = int(*v);
  if (auto v = integer_field(body, "min_tokens", 0, kMaxTokens)) s.min_tokens = int(*v);
  s.temperature = number_field(body, "temperature", 0.0, 100.0);
  s.top_p = number_field(body, "top_p", 0.0, 1.0, /*lo_open=*/true);
  s.min_p = number_field(body, "min_p", 0.0, 1.0);
  s.repetition_penalty = number_field(body, "repetition_penalty", 0.0, 100.0, /*lo_open=*/true);
  if (auto v = integer_field(body, "top_k", -1, 1 << 30)) s.top_k = int(*v);
  if (present(body, "seed")) {
    const json& v = body["seed"];
    MMFUSE_CHECK(v.is_number_integer() || v.is_number_unsigned(), bad_input,
                 "seed: expected an integer");
    // Negative seeds (allowed by OpenAI) wrap to the same 64-bit pattern every time.
    s.seed = v.is_number_unsigned() ? v.get<uint64_t>() : uint64_t(v.get<int64_t>());
  }
  if (present(body, "stop")) {
    const json& v = body["stop"];
    if (v.is_string()) {
      s.stop.push_back(v.get<std::string>());
    } else {
      MMFUSE_CHECK(v.is_array(), bad_input, "stop: expected a string or a list of strings");
      MMFUSE_CHECK(v.size() <= 16, bad_input, "stop: at most 16 stop strings");
      for (size_t i = 0; i < v.size(); ++i) {
        MMFUSE_CHECK(v[i].is_string(), bad_input,
                     "stop[" + std::to_string(i) + "]: expected a string");
        s.stop.push_back(v[i].get<std::string>());
      }
    }
    for (const auto& stop : s.stop) MMFUSE_CHECK(!stop.empty(), bad_input, "stop: empty string");
  }
  if (auto v = integer_field(body, "n", 1, int64_t(limits.max_choices))) s.n = size_t(*v);
  s.stream = bool_field(body, "stream", false);
  if (present(body, "stream_options")) {
    const json& o = body["stream_options"];
    MMFUSE_CHECK(o.is_object(), bad_input, "stream_options: expected an object");
    MMFUSE_CHECK(s.stream, bad_input, "stream_options: only allowed with \"stream\": true");
    s.include_usage = bool_field(o, "include_usage", false);
  }
  return s;
}

ChatRequest parse_chat_request(const json& body, const RequestLimits& limits) {
  MMFUSE_CHECK(body.is_object(), bad_input, "request body: expected a JSON object");
  ChatRequest r;
  r.model = model_field(body);
  MMFUSE_CHECK(body.contains("messages"), bad_input, "messages: missing");
  const json& messages = body["messages"];
  MMFUSE_CHECK(messages.is_array() && !messages.empty(), bad_input,
               "messages: expected a non-empty list");
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    const std::string field = "messages[" + std::to_string(i) + "]";
    MMFUSE_CHECK(m.is_object(), bad_input, field + ": expected an object");
    MMFUSE_CHECK(m.contains("role") && m["role"].is_string(), bad_input,
                 field + ".role: expected a string");
    const std::string role = m["role"].get<std::string>();
    if (role == "tool" || role == "function")
      throw_error(ErrorKind::unsupported,
                  field + ".role: \"" + role + "\" messages (tool calls) are not supported");
    MMFUSE_CHECK(role == "system" || role == "user" || role == "assistant", bad_input,
                 field + ".role: \"" + role + "\" is not system, user or assistant");
    MMFUSE_CHECK(m.contains("content") && !m["content"].is_null(), bad_input,
                 field + ".content: missing");
    const json& content = m["content"];
    if (content.is_string()) continue;
    MMFUSE_CHECK(content.is_array(), bad_input,
                 field + ".content: expected a string or a list of parts");
    for (size_t k = 0; k < content.size(); ++k) {
      const json& part = content[k];
      const std::string pf = field + ".content[" + std::to_string(k) + "]";
      MMFUSE_CHECK(part.is_object() && part.contains("type") && part["type"].is_string(), bad_input,
                   pf + ": expected {\"type\": \"text\"|\"image_url\", ...}");
      const std::string type = part["type"].get<std::string>();
      if (type == "text") {
        MMFUSE_CHECK(part.contains("text") && part["text"].is_string(), bad_input,
                     pf + ".text: expected a string");
      } else if (type == "image_url") {
        MMFUSE_CHECK(role == "user", bad_input, pf + ": images are only accepted in user messages");
        check_image_url(part, pf, r.image_urls);
      } else {
        throw_error(ErrorKind::bad_input, pf + ".type: \"" + type + "\" is not text or image_url");
      }
    }
  }
  MMFUSE_CHECK(r.image_urls.size() <= limits.max_images, bad_input,
               "messages: " + std::to_string(r.image_urls.size()) + " images, the limit is " +
                   std::to_string(limits.max_images));
  r.messages = messages;
  r.sampling = parse_sampling(body, limits);
  return r;
}

CompletionRequest parse_completion_request(const json& body, const RequestLimits& limits) {
  MMFUSE_CHECK(body.is_object(), bad_input, "request body: expected a JSON object");
  CompletionRequest r;
  r.model = model_field(body);
  MMFUSE_CHECK(body.contains("prompt"), bad_input, "prompt: missing");
  const json& p = body["prompt"];
  if (p.is_string()) {
    r.prompt = p.get<std::string>();
  } else if (p.is_array() && p.size() == 1 && p[0].is_string()) {
    r.prompt = p[0].get<std::string>();
  } else if (p.is_array() && !p.empty() && p[0].is_number_integer()) {
    throw_error(ErrorKind::unsupported, "prompt: token-id prompts are not supported; send text");
  } else {
    throw_error(ErrorKind::bad_input, "prompt: expected a string (or a list of one string)");
  }
  MMFUSE_CHECK(!present(body, "suffix"), unsupported, "suffix: not supported");
  MMFUSE_CHECK(!bool_field(body, "echo", false), unsupported, "echo: not supported");
  r.sampling = parse_sampling(body, limits);
  return r;
}

ModelRef split_model_id(const std::string& id) {
  const auto plus = id.find('+');
  if (plus == std::string::npos) return {id, ""};
  return {id.substr(0, plus), id.substr(plus + 1)};
}

GenerationConfig generation_config_for(const SamplingRequest& r, const GenerationConfig& defaults,
                                       size_t prompt_positions, size_t max_positions,
                                       size_t choice_index) {
  GenerationConfig c = defaults;
  // Beam search streams nothing and has no OpenAI field; requests sample or go greedy.
  c.num_beams = 1;
  c.num_return_sequences = 1;
  const bool warpers_given = r.top_p || r.top_k || r.min_p;
  if (r.temperature) {
    c.do_sample = *r.temperature > 0.0f;
    if (c.do_sample) c.temperature = *r.temperature;
  } else if (warpers_given) {
    c.do_sample = true;
  }
  if (r.top_p) c.top_p = *r.top_p;
  if (r.top_k) c.top_k = std::max(0, *r.top_k);
  if (r.min_p) c.min_p = *r.min_p;
  if (r.repetition_penalty) c.repetition_penalty = *r.repetition_penalty;
  if (r.min_tokens) c.min_new_tokens = *r.min_tokens;
  if (r.seed) c.seed = *r.seed + choice_index;
  for (const auto& s : r.stop) c.stop_strings.push_back(s);

  MMFUSE_CHECK(prompt_positions < max_positions, bad_input,
               "messages: the prompt takes " + std::to_string(prompt_positions) +
                   " positions, the model's context is " + std::to_string(max_positions));
  const size_t room = max_positions - prompt_positions;
  size_t new_tokens = room;
  if (r.max_tokens) {
    new_tokens = size_t(*r.max_tokens);
    MMFUSE_CHECK(new_tokens <= room, bad_input,
                 "max_tokens: the prompt takes " + std::to_string(prompt_positions) +
                     " positions and " + std::to_string(new_tokens) +
                     " new tokens would pass the model's context of " +
                     std::to_string(max_positions));
  } else if (defaults.max_new_tokens) {
    new_tokens = std::min(room, size_t(std::max(1, *defaults.max_new_tokens)));
  }
  c.max_new_tokens = int(new_tokens);
  c.min_new_tokens = std::min(c.min_new_tokens, int(new_tokens));
  validate(c);
  return c;
}

}  // namespace mmfuse::server
