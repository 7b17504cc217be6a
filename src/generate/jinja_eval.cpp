#include "generate/jinja_eval.h"

#include <cmath>
#include <unordered_map>

#include "generate/jinja_builtins.h"
#include "generate/jinja_lexer.h"
#include "mmfuse/error.h"

namespace mmfuse::jinja {

namespace {

// Built by appending: GCC 12 warns falsely (-Wrestrict) on "'" + std::string.
std::string quote(const std::string& s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '\'';
  out += s;
  out += '\'';
  return out;
}

enum class Flow { normal, break_loop, continue_loop };

struct Frame {
  std::unordered_map<std::string, Value> vars;
};

// Python slice indices (PySlice_AdjustIndices) of a sequence of length n.
std::vector<size_t> slice_positions(int64_t n, const Value& start_v, const Value& stop_v, const Value& step_v) {
  const auto given = [](const Value& v) { return !(v.is_none() || v.is_undefined()); };
  int64_t step = 1;
  if (given(step_v)) {
    if (!step_v.is_int() && !step_v.is_bool()) throw_error(ErrorKind::bad_input, "chat template: slice indices must be integers");
    step = step_v.to_int();
  }
  if (step == 0) throw_error(ErrorKind::bad_input, "chat template: slice step cannot be zero");
  const int64_t lower = step > 0 ? 0 : -1;
  const int64_t upper = step > 0 ? n : n - 1;
  const auto bound = [&](const Value& v, int64_t fallback) {
    if (!given(v)) return fallback;
    if (!v.is_int() && !v.is_bool()) throw_error(ErrorKind::bad_input, "chat template: slice indices must be integers");
    int64_t i = v.to_int();
    if (i < 0) {
      i += n;
      if (i < lower) i = lower;
    } else if (i > upper) {
      i = upper;
    }
    return i;
  };
  const int64_t start = bound(start_v, step > 0 ? lower : upper);
  const int64_t stop = bound(stop_v, step > 0 ? upper : lower);
  std::vector<size_t> out;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) out.push_back(static_cast<size_t>(i));
  return out;
}

class Evaluator {
 public:
  Evaluator(const Dict& context, const RenderLimits& limits) : limits_(limits), globals_(global_functions()) {
    auto root = std::make_shared<Frame>();
    for (const auto& [k, v] : context.items) root->vars[k] = v;
    frames_.push_back(std::move(root));
  }

  std::string run(const Template& t) {
    exec_body(t.body);
    return std::move(out_);
  }

 private:
  [[noreturn]] static void fail_at(int line, int column, const std::string& what) {
    template_error(line, column, what);
  }
  [[noreturn]] static void fail_at(const Expr& e, const std::string& what) { fail_at(e.line, e.column, what); }

  // Bounds the evaluator's recursion (stack use), across macro calls too.
  struct DepthGuard {
    DepthGuard(Evaluator& e, int line, int column) : ev(e) {
      if (++ev.depth_ > ev.limits_.max_depth) {
        --ev.depth_;
        fail_at(line, column, "the template nests too deeply");
      }
    }
    ~DepthGuard() { --ev.depth_; }
    Evaluator& ev;
  };

  void step(int line, int column) {
    if (++steps_ > limits_.max_steps) fail_at(line, column, "the template does too much work (step limit reached)");
  }

  void emit(const std::string& s, int line, int column) {
    out_ += s;
    if (out_.size() > limits_.max_output_bytes) fail_at(line, column, "the rendered text is too long");
  }

  // ---- scopes

  Value lookup(const std::string& name) const {
    for (auto it = frames_.rbegin(); it != frames_.rend(); ++it) {
      const auto found = (*it)->vars.find(name);
      if (found != (*it)->vars.end()) return found->second;
    }
    if (const Value* g = globals_.find(name)) return *g;
    return Undefined{name};
  }

  void assign(const std::string& name, Value v) { frames_.back()->vars[name] = std::move(v); }

  void bind_targets(const std::vector<std::string>& targets, const Value& v, int line, int column) {
    if (targets.size() == 1) {
      assign(targets[0], v);
      return;
    }
    const List items = iterate(v);
    if (items.size() != targets.size())
      fail_at(line, column, "cannot unpack " + std::to_string(items.size()) + " values into " +
                                std::to_string(targets.size()) + " names");
    for (size_t i = 0; i < targets.size(); ++i) assign(targets[i], items[i]);
  }

  // ---- statements

  Flow exec_body(const Body& body) {
    for (const StmtPtr& s : body) {
      const Flow f = exec(*s);
      if (f != Flow::normal) return f;
    }
    return Flow::normal;
  }

  Flow exec(const Stmt& s) {
    step(s.line, s.column);
    DepthGuard guard(*this, s.line, s.column);
    switch (s.kind) {
      case StmtKind::text: emit(s.text, s.line, s.column); return Flow::normal;
      case StmtKind::output: emit(to_str(eval(*s.expr)), s.line, s.column); return Flow::normal;
      case StmtKind::if_:
        for (const auto& [condition, body] : s.branches)
          if (truthy(eval(*condition))) return exec_body(body);
        return exec_body(s.else_body);
      case StmtKind::for_: exec_for(s); return Flow::normal;
      case StmtKind::set: exec_set(s); return Flow::normal;
      case StmtKind::macro: define_macro(s); return Flow::normal;
      case StmtKind::call_block: emit(to_str(exec_call_block(s)), s.line, s.column); return Flow::normal;
      case StmtKind::filter_block: {
        const std::string text = capture(s.body);
        emit(to_str(apply_filter_chain(*s.expr, text)), s.line, s.column);
        return Flow::normal;
      }
      case StmtKind::break_: return Flow::break_loop;
      case StmtKind::continue_: return Flow::continue_loop;
      case StmtKind::generation: return exec_body(s.body);
    }
    return Flow::normal;
  }

  // Renders `body` into a string of its own (set blocks, filter blocks, callers).
  std::string capture(const Body& body) {
    std::string saved = std::move(out_);
    out_.clear();
    exec_body(body);
    std::string text = std::move(out_);
    out_ = std::move(saved);
    return text;
  }

  void exec_for(const Stmt& s) {
    const Value iterable = eval(*s.expr);
    if (!(iterable.is_list() || iterable.is_dict() || iterable.is_string() || iterable.is_undefined()))
      fail_at(s.line, s.column, quote(type_name(iterable)) + " object is not iterable");
    List items = iterate(iterable);
    if (s.condition) {
      List kept;
      for (const Value& item : items) {
        step(s.line, s.column);
        frames_.push_back(std::make_shared<Frame>());
        bind_targets(s.targets, item, s.line, s.column);
        const bool keep = truthy(eval(*s.condition));
        frames_.pop_back();
        if (keep) kept.push_back(item);
      }
      items = std::move(kept);
    }
    if (items.empty()) {
      exec_body(s.else_body);
      return;
    }
    const int64_t n = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < n; ++i) {
      step(s.line, s.column);  // an empty body must still use up the budget
      frames_.push_back(std::make_shared<Frame>());
      bind_targets(s.targets, items[static_cast<size_t>(i)], s.line, s.column);
      assign("loop", loop_object(items, i));
      const Flow f = exec_body(s.body);
      frames_.pop_back();
      if (f == Flow::break_loop) break;
    }
  }

  static Value loop_object(const List& items, int64_t i) {
    const int64_t n = static_cast<int64_t>(items.size());
    Dict loop;
    loop.items.reserve(12);
    loop.items.emplace_back("index0", i);
    loop.items.emplace_back("index", i + 1);
    loop.items.emplace_back("revindex0", n - i - 1);
    loop.items.emplace_back("revindex", n - i);
    loop.items.emplace_back("first", i == 0);
    loop.items.emplace_back("last", i == n - 1);
    loop.items.emplace_back("length", n);
    loop.items.emplace_back("depth", int64_t{1});
    loop.items.emplace_back("depth0", int64_t{0});
    loop.items.emplace_back("previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value(Undefined{"previtem"}));
    loop.items.emplace_back("nextitem", i + 1 < n ? items[static_cast<size_t>(i + 1)] : Value(Undefined{"nextitem"}));
    loop.items.emplace_back("cycle", Callable{"loop.cycle", [i](const List& args, const KeywordArgs&) -> Value {
                                                if (args.empty())
                                                  throw_error(ErrorKind::bad_input, "chat template: no items for cycling given");
                                                return args[static_cast<size_t>(i) % args.size()];
                                              }});
    return loop;
  }

  // Whether `v` is or contains (through lists, dicts and namespaces) the namespace `ns`.
  static bool reaches(const Value& v, const Namespace* ns, int depth) {
    if (depth > 64) return true;  // too deep to be a chat template: refuse as if cyclic
    if (v.is_namespace()) {
      if (&v.as_namespace() == ns) return true;
      for (const auto& item : v.as_namespace().attributes.items)
        if (reaches(item.second, ns, depth + 1)) return true;
    } else if (v.is_list()) {
      for (const Value& x : v.as_list())
        if (reaches(x, ns, depth + 1)) return true;
    } else if (v.is_dict()) {
      for (const auto& item : v.as_dict().items)
        if (reaches(item.second, ns, depth + 1)) return true;
    }
    return false;
  }

  void exec_set(const Stmt& s) {
    if (!s.attribute.empty()) {
      Value target = lookup(s.targets[0]);
      if (!target.is_namespace())
        fail_at(s.line, s.column, "cannot assign attribute on non-namespace object");
      Value value = eval(*s.expr);
      // Namespaces are shared by reference: one that held itself would never be freed.
      if (reaches(value, &target.as_namespace(), 0))
        fail_at(s.line, s.column, "a namespace cannot hold itself");
      target.as_namespace().attributes.set(s.attribute, std::move(value));
      return;
    }
    if (!s.expr) {
      assign(s.targets[0], capture(s.body));
      return;
    }
    bind_targets(s.targets, eval(*s.expr), s.line, s.column);
  }

  void define_macro(const Stmt& s) {
    const Stmt* macro = &s;
    assign(s.name, Callable{s.name, [this, macro](const List& args, const KeywordArgs& kwargs) {
                              return call_macro(*macro, args, kwargs);
                            }});
  }

  Value call_macro(const Stmt& m, const List& args, const KeywordArgs& kwargs) {
    if (call_depth_ >= limits_.max_call_depth)
      fail_at(m.line, m.column, "macro calls nest too deeply (recursion?)");
    if (args.size() > m.params.size())
      fail_at(m.line, m.column, "macro '" + m.name + "' takes not more than " +
                                    std::to_string(m.params.size()) + " argument(s)");
    auto frame = std::make_shared<Frame>();
    std::vector<std::shared_ptr<Frame>> saved = std::move(frames_);
    frames_ = {saved.front(), frame};
    for (const auto& [key, value] : kwargs) {
      const std::string& name = key;  // clang 14 cannot capture a structured binding
      const bool known = name == "caller" || std::any_of(m.params.begin(), m.params.end(),
                                                         [&](const MacroParam& p) { return p.name == name; });
      if (!known) {
        frames_ = std::move(saved);
        fail_at(m.line, m.column, "macro '" + m.name + "' takes no keyword argument '" + key + "'");
      }
    }
    ++call_depth_;
    std::string saved_out = std::move(out_);
    out_.clear();
    try {
      for (size_t i = 0; i < m.params.size(); ++i) {
        const MacroParam& p = m.params[i];
        Value v = Undefined{p.name};
        if (i < args.size()) {
          v = args[i];
        } else if (auto it = std::find_if(kwargs.begin(), kwargs.end(), [&](const auto& kv) { return kv.first == p.name; });
                   it != kwargs.end()) {
          v = it->second;
        } else if (p.default_value) {
          v = eval(*p.default_value);
        }
        assign(p.name, std::move(v));
      }
      for (const auto& [key, value] : kwargs)
        if (key == "caller") assign("caller", value);
      exec_body(m.body);
    } catch (...) {
      out_ = std::move(saved_out);
      frames_ = std::move(saved);
      --call_depth_;
      throw;
    }
    std::string result = std::move(out_);
    out_ = std::move(saved_out);
    frames_ = std::move(saved);
    --call_depth_;
    return result;
  }

  Value exec_call_block(const Stmt& s) {
    const Stmt* block = &s;
    const std::vector<std::shared_ptr<Frame>> scope = frames_;
    Value caller = Callable{"caller", [this, block, scope](const List& args, const KeywordArgs&) -> Value {
                              std::vector<std::shared_ptr<Frame>> saved = std::move(frames_);
                              frames_ = scope;
                              frames_.push_back(std::make_shared<Frame>());
                              for (size_t i = 0; i < block->params.size(); ++i)
                                assign(block->params[i].name, i < args.size() ? args[i] : Value(Undefined{}));
                              std::string text;
                              try {
                                text = capture(block->body);
                              } catch (...) {
                                frames_ = std::move(saved);
                                throw;
                              }
                              frames_ = std::move(saved);
                              return text;
                            }};
    const Expr& call = *s.expr;
    const Value callee = eval(*call.object);
    if (!callee.is_callable()) fail_at(call, "'call' needs a macro");
    List args;
    for (const ExprPtr& a : call.items) args.push_back(eval(*a));
    KeywordArgs kwargs;
    for (const auto& [k, e] : call.kwargs) kwargs.emplace_back(k, eval(*e));
    kwargs.emplace_back("caller", caller);
    return callee.as_callable().call(args, kwargs);
  }

  Value apply_filter_chain(const Expr& f, const std::string& text) {
    const Value input = f.object ? apply_filter_chain(*f.object, text) : Value(text);
    List args;
    for (const ExprPtr& a : f.items) args.push_back(eval(*a));
    KeywordArgs kwargs;
    for (const auto& [k, e] : f.kwargs) kwargs.emplace_back(k, eval(*e));
    return apply_filter(f.name, input, args, kwargs);
  }

  // ---- expressions

  Value eval(const Expr& e) {
    step(e.line, e.column);
    DepthGuard guard(*this, e.line, e.column);
    switch (e.kind) {
      case ExprKind::literal: return e.value;
      case ExprKind::name: return lookup(e.name);
      case ExprKind::list:
      case ExprKind::tuple: {
        List items;
        items.reserve(e.items.size());
        for (const ExprPtr& item : e.items) items.push_back(eval(*item));
        return e.kind == ExprKind::tuple ? Value::tuple(std::move(items)) : Value(std::move(items));
      }
      case ExprKind::dict: {
        Dict d;
        for (size_t i = 0; i < e.items.size(); ++i) {
          const Value key = eval(*e.keys[i]);
          if (!key.is_string()) fail_at(*e.keys[i], "dict keys must be strings");
          d.set(key.as_string(), eval(*e.items[i]));
        }
        return d;
      }
      case ExprKind::get_attr: {
        const Value object = eval(*e.object);
        if (object.is_undefined()) fail_at(e, undefined_message(object));
        return get_attr(object, e.name);
      }
      case ExprKind::get_item: {
        const Value object = eval(*e.object);
        if (object.is_undefined()) fail_at(e, undefined_message(object));
        return get_item(object, eval(*e.index));
      }
      case ExprKind::slice: return eval_slice(e);
      case ExprKind::call: return eval_call(e);
      case ExprKind::filter: {
        const Value input = eval(*e.object);
        List args;
        for (const ExprPtr& a : e.items) args.push_back(eval(*a));
        KeywordArgs kwargs;
        for (const auto& [k, v] : e.kwargs) kwargs.emplace_back(k, eval(*v));
        return apply_filter(e.name, input, args, kwargs);
      }
      case ExprKind::test: {
        const Value input = eval(*e.object);
        List args;
        for (const ExprPtr& a : e.items) args.push_back(eval(*a));
        return apply_test(e.name, input, args) != e.negated;
      }
      case ExprKind::unary: return eval_unary(e);
      case ExprKind::binary: return eval_binary(e);
      case ExprKind::compare: {
        const Value left = eval(*e.object);
        const Value right = eval(*e.index);
        if (e.name == "not in") return !apply_test("in", left, {right});
        if ((e.name == "<" || e.name == "<=" || e.name == ">" || e.name == ">=") &&
            (left.is_undefined() || right.is_undefined()))
          fail_at(e, undefined_message(left.is_undefined() ? left : right));
        return apply_test(e.name, left, {right});
      }
      case ExprKind::conditional:
        if (truthy(eval(*e.condition))) return eval(*e.object);
        return e.otherwise ? eval(*e.otherwise) : Value(Undefined{});
    }
    return Undefined{};
  }

  static std::string undefined_message(const Value& v) {
    const std::string& name = v.as_undefined().name;
    return name.empty() ? "value is undefined" : quote(name) + " is undefined";
  }

  Value eval_slice(const Expr& e) {
    const Value object = eval(*e.object);
    const Value start = e.index ? eval(*e.index) : Value(None{});
    const Value stop = e.stop ? eval(*e.stop) : Value(None{});
    const Value stride = e.step ? eval(*e.step) : Value(None{});
    if (object.is_list()) {
      const List& list = object.as_list();
      List out;
      for (size_t i : slice_positions(static_cast<int64_t>(list.size()), start, stop, stride)) out.push_back(list[i]);
      return out;
    }
    if (object.is_string()) {
      const List chars = iterate(object);
      std::string out;
      for (size_t i : slice_positions(static_cast<int64_t>(chars.size()), start, stop, stride))
        out += chars[i].as_string();
      return out;
    }
    if (object.is_undefined()) fail_at(e, undefined_message(object));
    fail_at(e, quote(type_name(object)) + " object is not subscriptable");
  }

  Value eval_call(const Expr& e) {
    const Value callee = eval(*e.object);
    if (!callee.is_callable()) {
      if (callee.is_undefined()) fail_at(e, undefined_message(callee) + " (not callable)");
      fail_at(e, quote(type_name(callee)) + " object is not callable");
    }
    List args;
    args.reserve(e.items.size());
    for (const ExprPtr& a : e.items) args.push_back(eval(*a));
    KeywordArgs kwargs;
    for (const auto& [k, v] : e.kwargs) kwargs.emplace_back(k, eval(*v));
    return callee.as_callable().call(args, kwargs);
  }

  Value eval_unary(const Expr& e) {
    const Value v = eval(*e.object);
    if (e.name == "not") return !truthy(v);
    if (v.is_undefined()) fail_at(e, undefined_message(v));
    if (!v.is_number()) fail_at(e, "bad operand type for unary " + e.name + ": '" + type_name(v) + "'");
    if (e.name == "+") return v.is_float() ? v : Value(v.to_int());
    if (v.is_float()) return -v.as_float();
    if (v.to_int() == INT64_MIN) fail_at(e, "integer overflow");
    return -v.to_int();
  }

  [[noreturn]] void fail_operands(const Expr& e, const Value& a, const Value& b) {
    if (a.is_undefined() || b.is_undefined()) fail_at(e, undefined_message(a.is_undefined() ? a : b));
    if (e.name == "+" && a.is_string())
      fail_at(e, "can only concatenate str (not \"" + type_name(b) + "\") to str");
    fail_at(e, "unsupported operand type(s) for " + e.name + ": '" + type_name(a) + "' and '" + type_name(b) + "'");
  }

  static Value repeat(const Value& seq, int64_t times, const Expr& e, const RenderLimits& limits) {
    if (times <= 0) return seq.is_string() ? Value(std::string()) : Value(List{});
    const size_t unit = seq.is_string() ? seq.as_string().size() : seq.as_list().size();
    if (unit != 0 && static_cast<double>(unit) * static_cast<double>(times) > static_cast<double>(limits.max_output_bytes))
      fail_at(e, "repetition result is too large");
    if (seq.is_string()) {
      std::string out;
      for (int64_t i = 0; i < times; ++i) out += seq.as_string();
      return out;
    }
    List out;
    for (int64_t i = 0; i < times; ++i) out.insert(out.end(), seq.as_list().begin(), seq.as_list().end());
    return out;
  }

  Value eval_binary(const Expr& e) {
    const std::string& op = e.name;
    if (op == "and") {
      Value left = eval(*e.object);
      return truthy(left) ? eval(*e.index) : left;
    }
    if (op == "or") {
      Value left = eval(*e.object);
      return truthy(left) ? left : eval(*e.index);
    }
    const Value a = eval(*e.object);
    const Value b = eval(*e.index);
    if (op == "~") return to_str(a) + to_str(b);
    if (a.is_number() && b.is_number()) return arithmetic(e, a, b);
    if (op == "+") {
      if (a.is_string() && b.is_string()) return a.as_string() + b.as_string();
      if (a.is_list() && b.is_list()) {
        List out = a.as_list();
        out.insert(out.end(), b.as_list().begin(), b.as_list().end());
        return out;
      }
    }
    if (op == "*") {
      if ((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) return repeat(a, b.to_int(), e, limits_);
      if ((b.is_string() || b.is_list()) && (a.is_int() || a.is_bool())) return repeat(b, a.to_int(), e, limits_);
    }
    fail_operands(e, a, b);
  }

  Value arithmetic(const Expr& e, const Value& a, const Value& b) {
    const std::string& op = e.name;
    if (op == "/") {
      if (b.to_double() == 0.0) fail_at(e, "division by zero");
      return a.to_double() / b.to_double();
    }
    if (a.is_float() || b.is_float() || (op == "**" && b.to_int() < 0)) {
      const double x = a.to_double(), y = b.to_double();
      if (op == "+") return x + y;
      if (op == "-") return x - y;
      if (op == "*") return x * y;
      if (op == "**") return std::pow(x, y);
      if (y == 0.0) fail_at(e, "float division by zero");
      if (op == "//") return std::floor(x / y);
      if (op == "%") {
        double r = std::fmod(x, y);
        if (r != 0.0 && ((r < 0) != (y < 0))) r += y;
        return r;
      }
    }
    const int64_t x = a.to_int(), y = b.to_int();
    int64_t r = 0;
    if (op == "+") {
      if (__builtin_add_overflow(x, y, &r)) fail_at(e, "integer overflow");
      return r;
    }
    if (op == "-") {
      if (__builtin_sub_overflow(x, y, &r)) fail_at(e, "integer overflow");
      return r;
    }
    if (op == "*") {
      if (__builtin_mul_overflow(x, y, &r)) fail_at(e, "integer overflow");
      return r;
    }
    if (op == "**") {
      r = 1;
      int64_t base = x;
      for (int64_t exponent = y; exponent > 0; exponent >>= 1) {  // by squaring: y may be huge
        if ((exponent & 1) != 0 && __builtin_mul_overflow(r, base, &r)) fail_at(e, "integer overflow");
        if (exponent > 1 && __builtin_mul_overflow(base, base, &base)) fail_at(e, "integer overflow");
      }
      return r;
    }
    if (y == 0) fail_at(e, "integer division or modulo by zero");
    if (x == INT64_MIN && y == -1) fail_at(e, "integer overflow");
    int64_t q = x / y, m = x % y;
    if (m != 0 && ((m < 0) != (y < 0))) {  // Python floors
      q -= 1;
      m += y;
    }
    return op == "//" ? q : m;
  }

  const RenderLimits& limits_;
  Dict globals_;
  std::vector<std::shared_ptr<Frame>> frames_;
  std::string out_;
  size_t steps_ = 0;
  int call_depth_ = 0;
  int depth_ = 0;
};

}  // namespace

std::string render(const Template& tmpl, const Dict& context, const RenderLimits& limits) {
  return Evaluator(context, limits).run(tmpl);
}

}  // namespace mmfuse::jinja
