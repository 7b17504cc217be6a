// Parses a Jinja template (the subset Hugging Face chat templates use) into a
// syntax tree. Syntax errors, unknown tags, filters and tests are bad_input
// errors naming the line and column, as jinja2 reports them when it compiles.
#pragma once

#include <string>

#include "generate/jinja_ast.h"

namespace mmfuse::jinja {

Template parse_template(const std::string& source);

}  // namespace mmfuse::jinja
