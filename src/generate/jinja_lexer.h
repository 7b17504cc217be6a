// Splits a Jinja template into tokens: template text (with the whitespace
// control transformers configures already applied: `{%- -%}` markers,
// trim_blocks, lstrip_blocks, no trailing newline kept) and the tokens inside
// `{{ }}` / `{% %}` tags. `{# #}` comments leave no token.
#pragma once

#include <string>
#include <vector>

namespace mmfuse::jinja {

enum class TokenKind {
  text,            // template data between tags
  variable_begin,  // {{
  variable_end,    // }}
  block_begin,     // {%
  block_end,       // %}
  name,
  string,  // value: the unescaped contents
  integer,
  floating,
  op,  // value: the operator text ("+", "//", "(", ...)
  end_of_input,
};

struct Token {
  TokenKind kind;
  std::string value;
  int line = 1;
  int column = 1;
};

// Throws mmfuse::Error (bad_input) naming the line and column of the fault.
std::vector<Token> tokenize(const std::string& source);

// "chat template: line L, column C: what": the prefix every template error uses.
[[noreturn]] void template_error(int line, int column, const std::string& what);

}  // namespace mmfuse::jinja
