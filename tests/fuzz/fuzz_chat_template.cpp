// Fuzzes the chat-template interpreter: arbitrary bytes as a Jinja template
// (lexer, parser), and every template that parses rendered against a small
// conversation under tight work limits. Anything but mmfuse::Error is a bug.
#include <cstdint>
#include <string>

#include "generate/jinja_eval.h"
#include "generate/jinja_parser.h"
#include "mmfuse/error.h"

namespace {

const mmfuse::jinja::Dict& context() {
  static const mmfuse::jinja::Dict ctx = [] {
    mmfuse::jinja::Dict d;
    d.set("messages", mmfuse::jinja::from_json(nlohmann::ordered_json::parse(R"([
      {"role": "system", "content": "Be brief."},
      {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Héllo 世界"}]},
      {"role": "assistant", "content": "Hi", "tool_calls": [{"id": "abc123def", "function": {"name": "f", "arguments": {"a": 1}}}]},
      {"role": "user", "content": "  again  "}])")));
    d.set("add_generation_prompt", true);
    d.set("bos_token", "<s>");
    d.set("eos_token", "</s>");
    d.set("tools", mmfuse::jinja::None{});
    return d;
  }();
  return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string source(reinterpret_cast<const char*>(data), size);
  try {
    const mmfuse::jinja::Template tmpl = mmfuse::jinja::parse_template(source);
    mmfuse::jinja::RenderLimits limits;
    limits.max_steps = 200'000;
    limits.max_output_bytes = 1u << 20;
    (void)mmfuse::jinja::render(tmpl, context(), limits);
  } catch (const mmfuse::Error&) {
  }
  return 0;
}
