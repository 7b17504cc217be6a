// Where a Hugging Face folder keeps its chat template: chat_template.json
// ({"chat_template": "..."}, written by processors such as LLaVA's), else
// tokenizer_config.json's "chat_template" (a string, or a list of
// {"name", "template"} of which "default" is used), as transformers 4.44 finds it.
#pragma once

#include <filesystem>
#include <string>

namespace mmfuse::text {

// The template source, or "" when the folder has none. Malformed files (and a
// list with no "default") are bad_input naming the file.
std::string read_chat_template(const std::filesystem::path& dir);

}  // namespace mmfuse::text
