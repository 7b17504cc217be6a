#include "text/chat_template_file.h"

#include "mmfuse/error.h"
#include "text/tokenizer_files.h"

namespace mmfuse::text {

namespace {

std::string template_field(const nlohmann::json& value, const std::string& where) {
  if (value.is_string()) return value.get<std::string>();
  MMFUSE_CHECK(value.is_array(), bad_input,
               where + ": \"chat_template\" must be a string or a list of {name, template}");
  for (const auto& entry : value) {
    MMFUSE_CHECK(entry.is_object() && entry.contains("name") && entry.contains("template") &&
                     entry["template"].is_string(),
                 bad_input, where + ": every \"chat_template\" entry needs name and template");
    if (entry["name"] == "default") return entry["template"].get<std::string>();
  }
  return "";
}

}  // namespace

std::string read_chat_template(const std::filesystem::path& dir) {
  for (const char* file : {"chat_template.json", "tokenizer_config.json"}) {
    const auto path = dir / file;
    const auto json = read_optional_json_object(path);
    if (json && json->contains("chat_template") && !(*json)["chat_template"].is_null())
      return template_field((*json)["chat_template"], path.string());
  }
  return "";
}

}  // namespace mmfuse::text
