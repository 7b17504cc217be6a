// The response objects of the OpenAI generation routes, field for field as
// OpenAI sends them: chat.completion and chat.completion.chunk, text_completion
// (streamed chunks have the same object name), and server-sent-event framing
// (`data: {...}\n\n`, ending with `data: [DONE]\n\n`).
// Pure functions; the routes (routes_chat.cpp) send what they build.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/http_util.h"

namespace mmfuse::server {

// Which OpenAI route a response belongs to.
enum class CompletionKind { chat, text };

struct ChoiceText {
  size_t index = 0;
  std::string text;
  std::string finish_reason;  // "stop" or "length"
};

struct Usage {
  size_t prompt_tokens = 0, completion_tokens = 0;
};

// "chatcmpl-" / "cmpl-" + 24 random hex digits.
std::string new_completion_id(CompletionKind kind);

// The whole (non-streamed) answer.
Json completion_response(CompletionKind kind, const std::string& id, int64_t created,
                         const std::string& model, const std::vector<ChoiceText>& choices,
                         const Usage& usage);

// One streamed chunk of choice `index`. Chat: `role` (first chunk) and/or
// `content` go in "delta"; text: `content` is "text". finish_reason null
// until the choice's last chunk.
Json completion_chunk(CompletionKind kind, const std::string& id, int64_t created,
                      const std::string& model, size_t index,
                      const std::optional<std::string>& role,
                      const std::optional<std::string>& content,
                      const std::optional<std::string>& finish_reason);

// stream_options.include_usage: the chunk after the last choice chunk, with no choices.
Json usage_chunk(CompletionKind kind, const std::string& id, int64_t created,
                 const std::string& model, const Usage& usage);

// One server-sent event carrying `data` as compact JSON (invalid UTF-8 replaced).
std::string sse_event(const Json& data);
// The stream's last event.
inline constexpr const char* kSseDone = "data: [DONE]\n\n";
// A comment line: keeps proxies from closing an idle stream and lets the server
// notice a client that went away while its request waits in the queue.
inline constexpr const char* kSseKeepAlive = ": keep-alive\n\n";

}  // namespace mmfuse::server
