#include "generate/chat_template.h"

#include <regex>


#include "generate/jinja_eval.h"
#include "generate/jinja_parser.h"
#include "mmfuse/error.h"
#include "text/generative_tokenizer.h"

namespace mmfuse {

namespace {

// LLaVA-1.5's prompt layout for folders without a template: role in capitals,
// then one "<image>\n" per image part, then each text part followed by a
// space; "ASSISTANT:" as the generation prompt. Renders what llava-hf's
// chat_template.json renders.
constexpr const char* kLlavaFallbackTemplate =
    "{%- for message in messages -%}\n"
    "{%- if message.role != 'system' %}{{ message.role.upper() ~ ': ' }}{% endif -%}\n"
    "{%- for part in message.content | selectattr('type', 'equalto', 'image') %}{{ '<image>\\n' }}{% endfor -%}\n"
    "{%- for part in message.content | selectattr('type', 'equalto', 'text') %}{{ part.text ~ ' ' }}{% endfor -%}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt %}ASSISTANT:{% endif -%}\n";

// The fallback template reads content as parts; a plain string is one text part.
nlohmann::json content_as_parts(const nlohmann::json& messages) {
  nlohmann::json out = messages;
  if (!out.is_array()) return out;
  for (auto& message : out)
    if (message.is_object() && message.contains("content") && message["content"].is_string())
      message["content"] = nlohmann::json::array({{{"type", "text"}, {"text", message["content"]}}});
  return out;
}

}  // namespace

ChatTemplate::ChatTemplate(const std::string& source)
    : template_(std::make_shared<const jinja::Template>(jinja::parse_template(source))) {}

std::string ChatTemplate::render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                 const nlohmann::ordered_json& extra_context) const {
  MMFUSE_CHECK(extra_context.is_null() || extra_context.is_object(), bad_input,
               "chat template: the extra context must be a JSON object");
  jinja::Dict context;
  // transformers renders with messages=, tools=None, documents=None,
  // add_generation_prompt= and the special tokens / kwargs.
  context.set("tools", jinja::None{});
  context.set("documents", jinja::None{});
  if (extra_context.is_object())
    for (const auto& [key, value] : extra_context.items()) context.set(key, jinja::from_json(value));
  context.set("messages", jinja::from_json(messages));
  context.set("add_generation_prompt", add_generation_prompt);
  return jinja::render(*template_, context);
}

std::string render_chat_template(const std::string& template_source, const nlohmann::ordered_json& messages,
                                 bool add_generation_prompt, const nlohmann::ordered_json& extra_context) {
  return ChatTemplate(template_source).render(messages, add_generation_prompt, extra_context);
}

std::string render_chat_template(const std::string& template_source, const nlohmann::json& messages,
                                 bool add_generation_prompt, const nlohmann::json& extra_context) {
  return render_chat_template(template_source, nlohmann::ordered_json(messages), add_generation_prompt,
                              nlohmann::ordered_json(extra_context));
}

std::string render_chat(const std::string& template_source, const nlohmann::json& messages,
                        bool add_generation_prompt, const GenerativeTokenizer& tokenizer) {
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
  for (const char* attribute : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
    const std::string token = tokenizer.special_token(attribute);
    if (!token.empty()) extra[attribute] = token;  // unset ones stay undefined, as in special_tokens_map
  }
  if (template_source.empty()) {
    static const ChatTemplate fallback(kLlavaFallbackTemplate);
    return fallback.render(nlohmann::ordered_json(content_as_parts(messages)), add_generation_prompt, extra);
  }
  return ChatTemplate(template_source).render(nlohmann::ordered_json(messages), add_generation_prompt, extra);
}

bool template_reads_content_parts(const std::string& template_source) {
  if (template_source.empty()) return true;  // the LLaVA fallback reads parts
  static const std::regex loop(
      R"(for\s+\w+\s+in\s+(message|msg|m)\s*(\[\s*['"]content['"]\s*\]|\.content))");
  return std::regex_search(template_source, loop);
}

HfConversation openai_to_hf_messages(const nlohmann::json& openai_messages,
                                     bool content_as_parts) {
  MMFUSE_CHECK(openai_messages.is_array(), bad_input, "messages: must be an array");
  HfConversation out;
  out.messages = nlohmann::json::array();
  for (size_t i = 0; i < openai_messages.size(); ++i) {
    const nlohmann::json& message = openai_messages[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    MMFUSE_CHECK(message.is_object(), bad_input, where + ": must be an object");
    MMFUSE_CHECK(message.contains("role") && message["role"].is_string(), bad_input,
                 where + ".role: must be a string");
    nlohmann::json converted = message;
    if (message.contains("content") && message["content"].is_array()) {
      nlohmann::json parts = nlohmann::json::array();
      for (size_t j = 0; j < message["content"].size(); ++j) {
        const nlohmann::json& part = message["content"][j];
        const std::string part_where = where + ".content[" + std::to_string(j) + "]";
        MMFUSE_CHECK(part.is_object() && part.contains("type") && part["type"].is_string(), bad_input,
                     part_where + ": must be an object with a string \"type\"");
        const std::string type = part["type"].get<std::string>();
        if (type == "text") {
          MMFUSE_CHECK(part.contains("text") && part["text"].is_string(), bad_input,
                       part_where + ".text: must be a string");
          parts.push_back({{"type", "text"}, {"text", part["text"]}});
        } else if (type == "image_url") {
          const nlohmann::json* url = nullptr;
          if (part.contains("image_url") && part["image_url"].is_string()) {
            url = &part["image_url"];
          } else if (part.contains("image_url") && part["image_url"].is_object() &&
                     part["image_url"].contains("url") && part["image_url"]["url"].is_string()) {
            url = &part["image_url"]["url"];
          }
          MMFUSE_CHECK(url != nullptr, bad_input, part_where + ".image_url.url: must be a string");
          out.image_urls.push_back(url->get<std::string>());
          parts.push_back({{"type", "image"}});
        } else {
          throw_error(ErrorKind::bad_input, part_where + ".type: unsupported content part type '" + type + "'");
        }
      }
      if (content_as_parts) {
        converted["content"] = std::move(parts);
      } else {
        std::string text;
        for (const auto& part : parts) {
          MMFUSE_CHECK(part["type"] == "text", bad_input,
                       where + ".content: this model's chat template has no place for images");
          text += (text.empty() ? "" : "\n") + part["text"].get<std::string>();
        }
        converted["content"] = text;
      }
    } else if (message.contains("content")) {
      MMFUSE_CHECK(message["content"].is_string() || message["content"].is_null(), bad_input,
                   where + ".content: must be a string, an array of parts or null");
      if (content_as_parts && message["content"].is_string())
        converted["content"] = nlohmann::json::array(
            {{{"type", "text"}, {"text", message["content"].get<std::string>()}}});
    }
    out.messages.push_back(std::move(converted));
  }
  return out;
}

}  // namespace mmfuse
