// Renders a parsed template with the semantics of jinja2's sandboxed
// environment: scopes (a for-loop body and a macro have their own; `set` in
// them does not leak out), the loop object, macros, undefined values.
// Work is bounded: a step budget and a call-depth limit turn runaway templates
// into bad_input errors instead of hangs or stack overflows.
#pragma once

#include <string>

#include "generate/jinja_ast.h"

namespace mmfuse::jinja {

struct RenderLimits {
  size_t max_steps = 5'000'000;        // statements, expressions and loop iterations
  size_t max_output_bytes = 64u << 20;  // the rendered text
  int max_call_depth = 32;             // nested macro calls
  int max_depth = 1500;                // nested statements + expressions being evaluated (stack use)
};

// `context` holds the variables the template sees (messages, bos_token, ...).
std::string render(const Template& tmpl, const Dict& context, const RenderLimits& limits = {});

}  // namespace mmfuse::jinja
