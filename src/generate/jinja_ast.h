// The syntax tree of a parsed Jinja template: expressions and statements.
// Plain structs tagged with a kind; the evaluator switches on the kind.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "generate/jinja_value.h"

namespace mmfuse::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind {
  literal,      // value
  name,         // name
  list,         // items
  tuple,        // items
  dict,         // keys[i] -> items[i]
  get_attr,     // object.name
  get_item,     // object[index]
  slice,        // object[start:stop:step] (null parts are absent)
  call,         // callee(args, kwargs)
  filter,       // object | name(args, kwargs)
  test,         // object is [not] name(args)
  unary,        // op object ("not", "-", "+")
  binary,       // left op right (arithmetic, "~", "and", "or")
  compare,      // left op right (==, !=, <, <=, >, >=, in, not in)
  conditional,  // then if condition else otherwise
};

struct Expr {
  ExprKind kind;
  int line = 0;
  int column = 0;
  Value value;                // literal
  std::string name;           // name, attribute, filter, test; operator for unary/binary/compare
  ExprPtr object;             // get_attr/get_item/slice/filter/test/unary operand; call callee
  ExprPtr index;              // get_item index; binary/compare right; slice start
  ExprPtr stop, step;         // slice
  ExprPtr condition, otherwise;  // conditional (object is the "then" value)
  std::vector<ExprPtr> items;    // list/tuple/dict values; positional arguments
  std::vector<ExprPtr> keys;     // dict keys
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  bool negated = false;  // test: `is not`
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

enum class StmtKind {
  text,        // text
  output,      // {{ expr }}
  if_,         // branches: (condition, body) ...; else_body
  for_,        // for targets in expr [if condition]: body [else else_body]
  set,         // set targets = expr | set ns.attr = expr | set name %}body{% endset
  macro,       // macro name(params) body
  call_block,  // {% call macro(args) %}body{% endcall %}: body is `caller()`
  filter_block,  // {% filter name(args) %}body{% endfilter %}
  break_,
  continue_,
  generation,  // transformers' {% generation %}: renders its body as is
};

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // may be null
};

struct Stmt {
  StmtKind kind;
  int line = 0;
  int column = 0;
  std::string text;
  ExprPtr expr;       // output value; for iterable; set value; filter (object null)
  ExprPtr condition;  // for-loop filter
  std::vector<std::string> targets;  // for/set names (several: tuple unpacking)
  std::string attribute;             // set ns.attribute
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
  std::string name;  // macro name
  std::vector<MacroParam> params;
};

struct Template {
  Body body;
};

}  // namespace mmfuse::jinja
