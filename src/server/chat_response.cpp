// OpenAI response objects and SSE framing.
#include "server/chat_response.h"

#include <random>

namespace mmfuse::server {

namespace {

const char* object_name(CompletionKind kind, bool chunk) {
  if (kind == CompletionKind::text) return "text_completion";
  return chunk ? "chat.completion.chunk" : "chat.completion";
}

Json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

}  // namespace

std::string new_completion_id(CompletionKind kind) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  static const char* hex = "0123456789abcdef";
  std::string id = kind == CompletionKind::chat ? "chatcmpl-" : "cmpl-";
  for (int i = 0; i < 24; ++i) id += hex[rng() & 15];
  return id;
}

Json completion_response(CompletionKind kind, const std::string& id, int64_t created,
                         const std::string& model, const std::vector<ChoiceText>& choices,
                         const Usage& usage) {
  Json list = Json::array();
  for (const auto& c : choices) {
    if (kind == CompletionKind::chat)
      list.push_back({{"index", c.index},
                      {"message", {{"role", "assistant"}, {"content", c.text}}},
                      {"logprobs", nullptr},
                      {"finish_reason", c.finish_reason}});
    else
      list.push_back({{"index", c.index},
                      {"text", c.text},
                      {"logprobs", nullptr},
                      {"finish_reason", c.finish_reason}});
  }
  return {{"id", id},       {"object", object_name(kind, false)}, {"created", created},
          {"model", model}, {"choices", std::move(list)},         {"usage", usage_json(usage)}};
}

Json completion_chunk(CompletionKind kind, const std::string& id, int64_t created,
                      const std::string& model, size_t index,
                      const std::optional<std::string>& role,
                      const std::optional<std::string>& content,
                      const std::optional<std::string>& finish_reason) {
  Json choice = {{"index", index}};
  if (kind == CompletionKind::chat) {
    Json delta = Json::object();
    if (role) delta["role"] = *role;
    if (content) delta["content"] = *content;
    choice["delta"] = std::move(delta);
  } else {
    choice["text"] = content.value_or("");
  }
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = finish_reason ? Json(*finish_reason) : Json(nullptr);
  return {{"id", id},
          {"object", object_name(kind, true)},
          {"created", created},
          {"model", model},
          {"choices", Json::array({std::move(choice)})}};
}

Json usage_chunk(CompletionKind kind, const std::string& id, int64_t created,
                 const std::string& model, const Usage& usage) {
  return {{"id", id},       {"object", object_name(kind, true)}, {"created", created},
          {"model", model}, {"choices", Json::array()},          {"usage", usage_json(usage)}};
}

std::string sse_event(const Json& data) {
  return "data: " + data.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n\n";
}

}  // namespace mmfuse::server
