#include "text/chat_template_file.h"

#include <nlohmann/json.hpp>

#include "io/model_folder.h"
#include "mmfuse/error.h"

namespace mmfuse::text {

std::string read_chat_template(const std::filesystem::path& model_folder) {
  const auto processor_file = model_folder / "chat_template.json";
  if (std::filesystem::exists(processor_file)) {
    const nlohmann::json j = read_json_file(processor_file);
    MMFUSE_CHECK(j.is_object() && j.contains("chat_template") && j["chat_template"].is_string(), bad_input,
                 processor_file.string() + ": \"chat_template\" must be a string");
    return j["chat_template"].get<std::string>();
  }
  const auto tokenizer_file = model_folder / "tokenizer_config.json";
  if (!std::filesystem::exists(tokenizer_file)) return "";
  const nlohmann::json j = read_json_file(tokenizer_file);
  if (!j.is_object() || !j.contains("chat_template") || j["chat_template"].is_null()) return "";
  const nlohmann::json& t = j["chat_template"];
  if (t.is_string()) return t.get<std::string>();
  MMFUSE_CHECK(t.is_array(), bad_input,
               tokenizer_file.string() + ": \"chat_template\" must be a string or a list of {name, template}");
  for (const auto& entry : t) {
    MMFUSE_CHECK(entry.is_object() && entry.contains("name") && entry.contains("template") &&
                     entry["name"].is_string() && entry["template"].is_string(),
                 bad_input, tokenizer_file.string() + ": \"chat_template\" entries must be {name, template}");
    if (entry["name"] == "default") return entry["template"].get<std::string>();
  }
  throw_error(ErrorKind::bad_input,
              tokenizer_file.string() + ": \"chat_template\" lists several templates and none is named \"default\"");
}

}  // namespace mmfuse::text
