// The values a Jinja template computes with, as Python objects behave in
// jinja2: undefined (distinct from none), bool, int, float, str, list, dict
// (insertion-ordered, string keys), callables (macros, globals, bound string /
// dict methods) and namespace objects (the one mutable kind, for
// `{% set ns.x = ... %}`). Lists and dicts are immutable once built, as in
// transformers' ImmutableSandboxedEnvironment, so they are shared, not copied.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace mmfuse::jinja {

class Value;
using List = std::vector<Value>;
using KeywordArgs = std::vector<std::pair<std::string, Value>>;

// A str-keyed dict that keeps insertion order (Python dict semantics).
struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  const Value* find(const std::string& key) const;
  void set(const std::string& key, Value value);
};

struct Callable {
  std::string name;
  std::function<Value(const List& args, const KeywordArgs& kwargs)> call;
};

struct Namespace {
  Dict attributes;
};

struct Undefined {
  std::string name;  // what was looked up, for error messages
};

struct None {};

class Value {
 public:
  using Storage = std::variant<Undefined, None, bool, int64_t, double, std::string,
                               std::shared_ptr<const List>, std::shared_ptr<const Dict>,
                               std::shared_ptr<const Callable>, std::shared_ptr<Namespace>>;

  Value() : v_(Undefined{}) {}
  Value(Undefined u) : v_(std::move(u)) {}
  Value(None) : v_(None{}) {}
  Value(bool b) : v_(b) {}
  Value(int64_t i) : v_(i) {}
  Value(int i) : v_(static_cast<int64_t>(i)) {}
  Value(double f) : v_(f) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(List l) : v_(std::make_shared<const List>(std::move(l))) {}
  Value(Dict d) : v_(std::make_shared<const Dict>(std::move(d))) {}
  Value(Callable c) : v_(std::make_shared<const Callable>(std::move(c))) {}
  Value(std::shared_ptr<Namespace> n) : v_(std::move(n)) {}

  bool is_undefined() const { return std::holds_alternative<Undefined>(v_); }
  bool is_none() const { return std::holds_alternative<None>(v_); }
  bool is_bool() const { return std::holds_alternative<bool>(v_); }
  bool is_int() const { return std::holds_alternative<int64_t>(v_); }
  bool is_float() const { return std::holds_alternative<double>(v_); }
  bool is_number() const { return is_int() || is_float() || is_bool(); }
  bool is_string() const { return std::holds_alternative<std::string>(v_); }
  bool is_list() const { return std::holds_alternative<std::shared_ptr<const List>>(v_); }
  bool is_dict() const { return std::holds_alternative<std::shared_ptr<const Dict>>(v_); }
  bool is_callable() const { return std::holds_alternative<std::shared_ptr<const Callable>>(v_); }
  bool is_namespace() const { return std::holds_alternative<std::shared_ptr<Namespace>>(v_); }

  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return std::get<int64_t>(v_); }
  double as_float() const { return std::get<double>(v_); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const List& as_list() const { return *std::get<std::shared_ptr<const List>>(v_); }
  const Dict& as_dict() const { return *std::get<std::shared_ptr<const Dict>>(v_); }
  const Callable& as_callable() const { return *std::get<std::shared_ptr<const Callable>>(v_); }
  Namespace& as_namespace() const { return *std::get<std::shared_ptr<Namespace>>(v_); }
  const Undefined& as_undefined() const { return std::get<Undefined>(v_); }
  // int or bool as an integer (Python's bool is an int).
  int64_t to_int() const { return is_bool() ? (as_bool() ? 1 : 0) : as_int(); }
  double to_double() const { return is_float() ? as_float() : static_cast<double>(to_int()); }

  const Storage& storage() const { return v_; }

  // A Python tuple: a list everywhere except in how it prints ("(1, 2)").
  static Value tuple(List items) {
    Value v(std::move(items));
    v.tuple_ = true;
    return v;
  }
  bool is_tuple() const { return tuple_; }

 private:
  Storage v_;
  bool tuple_ = false;
};

// Python's bool(x).
bool truthy(const Value& v);
// Python's x == y (1 == 1.0 == True; lists and dicts compare deeply).
bool equals(const Value& a, const Value& b);
// The Python type name, for error messages ("str", "int", "dict", ...).
std::string type_name(const Value& v);
// str(x): what `{{ x }}` prints; undefined prints "".
std::string to_str(const Value& v);
// repr(x): how a value looks inside a printed list or dict.
std::string to_repr(const Value& v);
// Python's repr of a float ("1.0", "0.1", "1e+20").
std::string float_repr(double f);
// json.dumps(x, ensure_ascii=False, indent=indent, sort_keys=False): transformers'
// tojson filter. indent < 0 means None (", " and ": " separators).
std::string to_json(const Value& v, int indent);

Value from_json(const nlohmann::ordered_json& j);

}  // namespace mmfuse::jinja
