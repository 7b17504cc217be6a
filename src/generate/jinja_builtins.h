// The filters, tests, global functions and Python methods (str / dict) that
// templates may call. Each takes already evaluated arguments.
#pragma once

#include <string>

#include "generate/jinja_value.h"

namespace mmfuse::jinja {

// Calls back into the evaluator: `map('upper')` applies a filter, and
// selectattr / select apply tests; both need the registry below.
bool is_known_filter(const std::string& name);
bool is_known_test(const std::string& name);

Value apply_filter(const std::string& name, const Value& input, const List& args,
                   const KeywordArgs& kwargs);
bool apply_test(const std::string& name, const Value& input, const List& args);

// obj.name where obj is a str, dict or list and name one of its Python
// methods: a callable bound to obj, or undefined if there is no such method.
Value bound_method(const Value& object, const std::string& name);

// The globals every template sees: range, namespace, dict, raise_exception
// (transformers' TemplateError -> mmfuse::Error bad_input with the message).
Dict global_functions();

// Python's iter(x) as a list: the items of a list, the keys of a dict, the
// characters (code points) of a str; undefined iterates as empty.
List iterate(const Value& v);
// len(x); throws for values without a length.
int64_t length(const Value& v);
// obj[key] as jinja2's environment.getitem: dict key, list/str index (negative
// from the end), then attribute; undefined when absent.
Value get_item(const Value& object, const Value& key);
// obj.name as jinja2's environment.getattr: Python attribute (method) first,
// then item.
Value get_attr(const Value& object, const std::string& name);

}  // namespace mmfuse::jinja
