#include "generate/jinja_parser.h"

#include <initializer_list>

#include "generate/jinja_builtins.h"
#include "generate/jinja_lexer.h"

namespace mmfuse::jinja {

namespace {

// Deeply nested input (fuzzed `((((...`, nested ifs, `a+a+a...` chains) must
// fail cleanly, not exhaust the stack: every open construct and every link of
// an operator / filter / attribute chain counts toward this bound on the
// tree's depth.
constexpr int kMaxNesting = 256;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  Template parse() {
    Template t;
    const std::string end = parse_body(t.body, {});
    (void)end;
    return t;
  }

 private:
  // ---- token stream
  const Token& current() const { return tokens_[pos_]; }
  const Token& peek(size_t ahead = 1) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }
  const Token& advance() {
    const Token& t = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }
  bool is_op(const char* op) const { return current().kind == TokenKind::op && current().value == op; }
  bool is_name(const char* name) const {
    return current().kind == TokenKind::name && current().value == name;
  }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(const char* name) {
    if (!is_name(name)) return false;
    advance();
    return true;
  }
  [[noreturn]] void fail(const std::string& what) const {
    template_error(current().line, current().column, what);
  }
  [[noreturn]] void fail_unexpected(const std::string& expected) const {
    fail("expected " + expected + ", got " + describe(current()));
  }
  static std::string describe(const Token& t) {
    switch (t.kind) {
      case TokenKind::text: return "template text";
      case TokenKind::variable_begin: return "'{{'";
      case TokenKind::variable_end: return "'}}'";
      case TokenKind::block_begin: return "'{%'";
      case TokenKind::block_end: return "'%}'";
      case TokenKind::end_of_input: return "end of template";
      case TokenKind::string: return "string";
      default: return "'" + t.value + "'";
    }
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) fail_unexpected(std::string("'") + op + "'");
  }
  void expect_block_end() {
    if (current().kind != TokenKind::block_end) fail_unexpected("end of statement block");
    advance();
  }
  std::string expect_identifier() {
    if (current().kind != TokenKind::name) fail_unexpected("a name");
    return advance().value;
  }

  struct DepthGuard {
    explicit DepthGuard(Parser& p) : parser(p) {
      if (++parser.depth_ > kMaxNesting) parser.fail("template nesting is too deep");
    }
    ~DepthGuard() { --parser.depth_; }
    Parser& parser;
  };

  // Counts one more link of a left-deep chain (a + b + c, x|f|g, a.b.c); the
  // caller gives the links back when the chain ends.
  void add_link(int& links) {
    if (++depth_ > kMaxNesting) fail("template nesting is too deep");
    ++links;
  }

  ExprPtr make(ExprKind kind, const Token& at) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = at.line;
    e->column = at.column;
    return e;
  }

  // ---- statements

  // Parses statements until a `{% name %}` with name in `ends` (returned; the
  // stream stands after the name) or the end of input (ends must be empty).
  std::string parse_body(Body& body, std::initializer_list<const char*> ends) {
    DepthGuard guard(*this);
    while (true) {
      const Token& t = current();
      if (t.kind == TokenKind::end_of_input) {
        if (ends.size() == 0) return "";
        std::string wanted;
        for (const char* e : ends) wanted += std::string(wanted.empty() ? "" : " or ") + "'" + e + "'";
        fail("unexpected end of template, looking for " + wanted);
      }
      if (t.kind == TokenKind::text) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::text;
        s->text = t.value;
        body.push_back(std::move(s));
        advance();
      } else if (t.kind == TokenKind::variable_begin) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::output;
        s->line = t.line;
        s->column = t.column;
        advance();
        s->expr = parse_tuple(true);
        if (current().kind != TokenKind::variable_end) fail_unexpected("'}}'");
        advance();
        body.push_back(std::move(s));
      } else if (t.kind == TokenKind::block_begin) {
        advance();
        if (current().kind != TokenKind::name) fail_unexpected("a statement name");
        for (const char* e : ends)
          if (current().value == e) {
            advance();
            return e;
          }
        body.push_back(parse_statement());
      } else {
        fail("unexpected " + describe(t));
      }
    }
  }

  StmtPtr new_stmt(StmtKind kind, const Token& at) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = at.line;
    s->column = at.column;
    return s;
  }

  StmtPtr parse_statement() {
    const Token at = current();
    const std::string& keyword = at.value;
    advance();
    if (keyword == "if") return parse_if(at);
    if (keyword == "for") return parse_for(at);
    if (keyword == "set") return parse_set(at);
    if (keyword == "macro") return parse_macro(at);
    if (keyword == "call") return parse_call_block(at);
    if (keyword == "filter") return parse_filter_block(at);
    if (keyword == "break" || keyword == "continue") {
      if (loop_depth_ == 0) template_error(at.line, at.column, "'" + keyword + "' outside of a loop");
      expect_block_end();
      return new_stmt(keyword == "break" ? StmtKind::break_ : StmtKind::continue_, at);
    }
    if (keyword == "generation") {
      auto s = new_stmt(StmtKind::generation, at);
      expect_block_end();
      parse_body(s->body, {"endgeneration"});
      expect_block_end();
      return s;
    }
    template_error(at.line, at.column, "encountered unknown tag '" + keyword + "'");
  }

  StmtPtr parse_if(const Token& at) {
    auto s = new_stmt(StmtKind::if_, at);
    ExprPtr condition = parse_tuple(false);
    while (true) {
      expect_block_end();
      Body body;
      const std::string end = parse_body(body, {"elif", "else", "endif"});
      s->branches.emplace_back(std::move(condition), std::move(body));
      if (end == "elif") {
        condition = parse_tuple(false);
        continue;
      }
      if (end == "else") {
        expect_block_end();
        parse_body(s->else_body, {"endif"});
      }
      expect_block_end();
      return s;
    }
  }

  std::vector<std::string> parse_targets() {
    std::vector<std::string> names;
    const bool parenthesised = skip_op("(");
    do {
      names.push_back(expect_identifier());
    } while (skip_op(","));
    if (parenthesised) expect_op(")");
    return names;
  }

  StmtPtr parse_for(const Token& at) {
    auto s = new_stmt(StmtKind::for_, at);
    s->targets = parse_targets();
    if (!skip_name("in")) fail_unexpected("'in'");
    s->expr = parse_tuple(false);
    if (skip_name("if")) s->condition = parse_expression(true);
    if (is_name("recursive")) fail("recursive loops are not supported");
    expect_block_end();
    ++loop_depth_;
    const std::string end = parse_body(s->body, {"endfor", "else"});
    --loop_depth_;
    if (end == "else") {
      expect_block_end();
      parse_body(s->else_body, {"endfor"});
    }
    expect_block_end();
    return s;
  }

  StmtPtr parse_set(const Token& at) {
    auto s = new_stmt(StmtKind::set, at);
    if (current().kind == TokenKind::name && peek().kind == TokenKind::op && peek().value == ".") {
      s->targets.push_back(advance().value);
      advance();
      s->attribute = expect_identifier();
    } else {
      s->targets = parse_targets();
    }
    if (skip_op("=")) {
      s->expr = parse_tuple(true);
      expect_block_end();
      return s;
    }
    if (s->targets.size() != 1 || !s->attribute.empty()) fail_unexpected("'='");
    expect_block_end();  // {% set name %}...{% endset %}
    parse_body(s->body, {"endset"});
    expect_block_end();
    return s;
  }

  void parse_params(std::vector<MacroParam>& params) {
    expect_op("(");
    while (!is_op(")")) {
      if (!params.empty()) expect_op(",");
      if (is_op(")")) break;
      MacroParam p;
      p.name = expect_identifier();
      if (skip_op("=")) p.default_value = parse_expression(true);
      params.push_back(std::move(p));
    }
    expect_op(")");
  }

  StmtPtr parse_macro(const Token& at) {
    auto s = new_stmt(StmtKind::macro, at);
    s->name = expect_identifier();
    parse_params(s->params);
    expect_block_end();
    const int saved_loops = loop_depth_;
    loop_depth_ = 0;
    parse_body(s->body, {"endmacro"});
    loop_depth_ = saved_loops;
    expect_block_end();
    return s;
  }

  StmtPtr parse_call_block(const Token& at) {
    auto s = new_stmt(StmtKind::call_block, at);
    if (is_op("(")) parse_params(s->params);
    s->expr = parse_expression(true);
    if (s->expr->kind != ExprKind::call) fail("expected a call after 'call'");
    expect_block_end();
    parse_body(s->body, {"endcall"});
    expect_block_end();
    return s;
  }

  StmtPtr parse_filter_block(const Token& at) {
    auto s = new_stmt(StmtKind::filter_block, at);
    ExprPtr chain;  // filters applied to a null object: the body's text
    do {
      chain = parse_filter(std::move(chain));
    } while (skip_op("|"));
    s->expr = std::move(chain);
    expect_block_end();
    parse_body(s->body, {"endfilter"});
    expect_block_end();
    return s;
  }

  // ---- expressions (precedence as jinja2's parser)

  ExprPtr parse_tuple(bool with_condexpr) {
    const Token at = current();
    ExprPtr first = parse_expression(with_condexpr);
    if (!is_op(",")) return first;
    auto t = make(ExprKind::tuple, at);
    t->items.push_back(std::move(first));
    while (skip_op(",")) {
      if (current().kind == TokenKind::block_end || current().kind == TokenKind::variable_end) break;
      t->items.push_back(parse_expression(with_condexpr));
    }
    return t;
  }

  ExprPtr parse_expression(bool with_condexpr) {
    DepthGuard guard(*this);
    if (!with_condexpr) return parse_or();
    const Token at = current();
    ExprPtr expr = parse_or();
    int links = 0;
    while (skip_name("if")) {
      add_link(links);
      auto c = make(ExprKind::conditional, at);
      c->condition = parse_or();
      if (skip_name("else")) c->otherwise = parse_expression(true);
      c->object = std::move(expr);
      expr = std::move(c);
    }
    depth_ -= links;
    return expr;
  }

  ExprPtr binary(ExprKind kind, const Token& at, std::string op, ExprPtr left, ExprPtr right) {
    auto b = make(kind, at);
    b->name = std::move(op);
    b->object = std::move(left);
    b->index = std::move(right);
    return b;
  }

  ExprPtr parse_or() {
    const Token at = current();
    ExprPtr left = parse_and();
    int links = 0;
    while (skip_name("or")) {
      add_link(links);
      left = binary(ExprKind::binary, at, "or", std::move(left), parse_and());
    }
    depth_ -= links;
    return left;
  }

  ExprPtr parse_and() {
    const Token at = current();
    ExprPtr left = parse_not();
    int links = 0;
    while (skip_name("and")) {
      add_link(links);
      left = binary(ExprKind::binary, at, "and", std::move(left), parse_not());
    }
    depth_ -= links;
    return left;
  }

  ExprPtr parse_not() {
    const Token at = current();
    if (skip_name("not")) {
      DepthGuard guard(*this);
      auto u = make(ExprKind::unary, at);
      u->name = "not";
      u->object = parse_not();
      return u;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const Token at = current();
    ExprPtr expr = parse_math1();
    // a < b < c is (a < b) and (b < c) in Jinja; chains are rare in chat
    // templates, so they are built as nested comparisons of the left result.
    int links = 0;
    while (true) {
      std::string op;
      if (current().kind == TokenKind::op &&
          (current().value == "==" || current().value == "!=" || current().value == "<" ||
           current().value == "<=" || current().value == ">" || current().value == ">=")) {
        op = advance().value;
      } else if (skip_name("in")) {
        op = "in";
      } else if (is_name("not") && peek().kind == TokenKind::name && peek().value == "in") {
        advance();
        advance();
        op = "not in";
      } else {
        depth_ -= links;
        return expr;
      }
      add_link(links);
      expr = binary(ExprKind::compare, at, op, std::move(expr), parse_math1());
    }
  }

  ExprPtr parse_math1() {
    const Token at = current();
    ExprPtr left = parse_concat();
    int links = 0;
    while (is_op("+") || is_op("-")) {
      add_link(links);
      std::string op = advance().value;
      left = binary(ExprKind::binary, at, op, std::move(left), parse_concat());
    }
    depth_ -= links;
    return left;
  }

  ExprPtr parse_concat() {
    const Token at = current();
    ExprPtr left = parse_math2();
    int links = 0;
    while (skip_op("~")) {
      add_link(links);
      left = binary(ExprKind::binary, at, "~", std::move(left), parse_math2());
    }
    depth_ -= links;
    return left;
  }

  ExprPtr parse_math2() {
    const Token at = current();
    ExprPtr left = parse_pow();
    int links = 0;
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      add_link(links);
      std::string op = advance().value;
      left = binary(ExprKind::binary, at, op, std::move(left), parse_pow());
    }
    depth_ -= links;
    return left;
  }

  ExprPtr parse_pow() {
    const Token at = current();
    ExprPtr left = parse_unary(true);
    int links = 0;
    while (skip_op("**")) {
      add_link(links);
      left = binary(ExprKind::binary, at, "**", std::move(left), parse_unary(true));
    }
    depth_ -= links;
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    const Token at = current();
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      auto u = make(ExprKind::unary, at);
      u->name = advance().value;
      u->object = parse_unary(false);
      node = std::move(u);
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    const Token at = current();
    switch (at.kind) {
      case TokenKind::name: {
        advance();
        auto e = make(ExprKind::literal, at);
        if (at.value == "true" || at.value == "True") {
          e->value = true;
        } else if (at.value == "false" || at.value == "False") {
          e->value = false;
        } else if (at.value == "none" || at.value == "None") {
          e->value = None{};
        } else {
          e->kind = ExprKind::name;
          e->name = at.value;
        }
        return e;
      }
      case TokenKind::string: {
        std::string s;
        while (current().kind == TokenKind::string) s += advance().value;  // 'a' 'b' == 'ab'
        auto e = make(ExprKind::literal, at);
        e->value = std::move(s);
        return e;
      }
      case TokenKind::integer: {
        advance();
        auto e = make(ExprKind::literal, at);
        try {
          e->value = static_cast<int64_t>(std::stoll(at.value));
        } catch (const std::exception&) {
          template_error(at.line, at.column, "integer literal out of range");
        }
        return e;
      }
      case TokenKind::floating: {
        advance();
        auto e = make(ExprKind::literal, at);
        e->value = std::strtod(at.value.c_str(), nullptr);
        return e;
      }
      default: break;
    }
    if (skip_op("(")) {
      if (skip_op(")")) return make(ExprKind::tuple, at);
      ExprPtr first = parse_expression(true);
      if (skip_op(")")) return first;
      auto t = make(ExprKind::tuple, at);
      t->items.push_back(std::move(first));
      while (skip_op(",")) {
        if (is_op(")")) break;
        t->items.push_back(parse_expression(true));
      }
      expect_op(")");
      return t;
    }
    if (skip_op("[")) {
      auto l = make(ExprKind::list, at);
      while (!is_op("]")) {
        if (!l->items.empty()) expect_op(",");
        if (is_op("]")) break;
        l->items.push_back(parse_expression(true));
      }
      expect_op("]");
      return l;
    }
    if (skip_op("{")) {
      auto d = make(ExprKind::dict, at);
      while (!is_op("}")) {
        if (!d->items.empty()) expect_op(",");
        if (is_op("}")) break;
        d->keys.push_back(parse_expression(true));
        expect_op(":");
        d->items.push_back(parse_expression(true));
      }
      expect_op("}");
      return d;
    }
    fail("unexpected " + describe(at));
  }

  ExprPtr parse_postfix(ExprPtr node) {
    int links = 0;
    while (true) {
      const Token at = current();
      if (is_op(".") || is_op("[") || is_op("(")) add_link(links);
      if (skip_op(".")) {
        if (current().kind == TokenKind::name) {
          auto g = make(ExprKind::get_attr, at);
          g->name = advance().value;
          g->object = std::move(node);
          node = std::move(g);
        } else if (current().kind == TokenKind::integer) {
          auto g = make(ExprKind::get_item, at);
          auto index = make(ExprKind::literal, current());
          const Token digits = advance();
          try {
            index->value = static_cast<int64_t>(std::stoll(digits.value));
          } catch (const std::exception&) {
            template_error(digits.line, digits.column, "integer index out of range");
          }
          g->object = std::move(node);
          g->index = std::move(index);
          node = std::move(g);
        } else {
          fail_unexpected("a name or number");
        }
      } else if (skip_op("[")) {
        node = parse_subscript(std::move(node), at);
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        depth_ -= links;
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr object, const Token& at) {
    ExprPtr start, stop, step;
    bool is_slice = false;
    if (!is_op(":")) start = parse_expression(true);
    if (skip_op(":")) {
      is_slice = true;
      if (!is_op(":") && !is_op("]")) stop = parse_expression(true);
      if (skip_op(":") && !is_op("]")) step = parse_expression(true);
    }
    expect_op("]");
    if (!is_slice) {
      auto g = make(ExprKind::get_item, at);
      g->object = std::move(object);
      g->index = std::move(start);
      return g;
    }
    auto s = make(ExprKind::slice, at);
    s->object = std::move(object);
    s->index = std::move(start);
    s->stop = std::move(stop);
    s->step = std::move(step);
    return s;
  }

  void parse_call_args(Expr& call) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) {
        expect_op(",");
        if (is_op(")")) break;
      }
      first = false;
      if (current().kind == TokenKind::name && peek().kind == TokenKind::op && peek().value == "=") {
        std::string key = advance().value;
        advance();
        call.kwargs.emplace_back(std::move(key), parse_expression(true));
      } else {
        if (!call.kwargs.empty()) fail("positional argument follows keyword argument");
        call.items.push_back(parse_expression(true));
      }
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto c = make(ExprKind::call, current());
    c->object = std::move(callee);
    parse_call_args(*c);
    return c;
  }

  ExprPtr parse_filter(ExprPtr object) {
    const Token at = current();
    std::string name = expect_identifier();
    while (is_op(".") && peek().kind == TokenKind::name) {
      advance();
      name += "." + advance().value;
    }
    if (!is_known_filter(name)) template_error(at.line, at.column, "no filter named '" + name + "'");
    auto f = make(ExprKind::filter, at);
    f->name = std::move(name);
    f->object = std::move(object);
    if (is_op("(")) parse_call_args(*f);
    return f;
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    int links = 0;
    while (true) {
      if (is_op("|") || is_name("is") || is_op("(")) add_link(links);
      if (skip_op("|")) {
        node = parse_filter(std::move(node));
      } else if (is_name("is")) {
        node = parse_test(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        depth_ -= links;
        return node;
      }
    }
  }

  ExprPtr parse_test(ExprPtr object) {
    advance();  // is
    const Token at = current();
    auto t = make(ExprKind::test, at);
    t->negated = skip_name("not");
    t->name = expect_identifier();
    if (!is_known_test(t->name)) template_error(at.line, at.column, "no test named '" + t->name + "'");
    t->object = std::move(object);
    const Token& next = current();
    const bool starts_argument =
        (next.kind == TokenKind::name && next.value != "else" && next.value != "or" &&
         next.value != "and" && next.value != "is" && next.value != "if") ||
        next.kind == TokenKind::string || next.kind == TokenKind::integer ||
        next.kind == TokenKind::floating ||
        (next.kind == TokenKind::op && (next.value == "[" || next.value == "{"));
    if (is_op("(")) {
      parse_call_args(*t);
    } else if (starts_argument) {
      t->items.push_back(parse_postfix(parse_primary()));
    }
    return t;
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

Template parse_template(const std::string& source) { return Parser(tokenize(source)).parse(); }

}  // namespace mmfuse::jinja
