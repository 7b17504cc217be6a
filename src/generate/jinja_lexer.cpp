#include "generate/jinja_lexer.h"

#include <algorithm>
#include <cctype>

#include "mmfuse/error.h"
#include "text/unicode_text.h"

namespace mmfuse::jinja {

void template_error(int line, int column, const std::string& what) {
  throw_error(ErrorKind::bad_input, "chat template: line " + std::to_string(line) + ", column " +
                                        std::to_string(column) + ": " + what);
}

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// jinja2 normalises every line ending to "\n" and, with keep_trailing_newline
// off, drops one newline at the very end of the template.
std::string normalize_newlines(const std::string& source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string source) : src_(std::move(source)) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
  }

  std::vector<Token> run() {
    size_t pos = 0;
    bool line_starting = true;  // the text at `pos` begins a line (lstrip_blocks)
    while (pos < src_.size()) {
      const size_t tag = find_tag(pos);
      std::string text = src_.substr(pos, tag - pos);
      if (tag == src_.size()) {
        emit_text(std::move(text), pos);
        break;
      }
      const char kind = src_[tag + 1];  // '{', '%' or '#'
      const char sign = tag + 2 < src_.size() ? src_[tag + 2] : '\0';
      if (sign == '-') {
        text.erase(std::find_if_not(text.rbegin(), text.rend(), is_space).base(), text.end());
      } else if (sign != '+' && kind != '{') {
        // lstrip_blocks: spaces and tabs between a line start and a block or
        // comment tag go.
        const size_t l_pos = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
        if ((l_pos > 0 || line_starting) &&
            text.find_first_not_of(" \t", l_pos) == std::string::npos)
          text.erase(l_pos);
      }
      emit_text(std::move(text), pos);
      size_t inner = tag + 2 + (sign == '-' || sign == '+' ? 1 : 0);
      if (kind == '#') {
        pos = skip_comment(tag, inner);
      } else if (kind == '%' && is_raw_begin(inner)) {
        pos = lex_raw(tag, inner);
      } else {
        pos = lex_tag(kind, tag, inner);
      }
      line_starting = pos > 0 && src_[pos - 1] == '\n';
    }
    tokens_.push_back(Token{TokenKind::end_of_input, "", line_of(src_.size()), column_of(src_.size())});
    return std::move(tokens_);
  }

 private:
  int line_of(size_t offset) const {
    return static_cast<int>(std::upper_bound(line_starts_.begin(), line_starts_.end(), offset) -
                            line_starts_.begin());
  }
  int column_of(size_t offset) const {
    return static_cast<int>(offset - line_starts_[static_cast<size_t>(line_of(offset) - 1)]) + 1;
  }
  [[noreturn]] void fail(size_t offset, const std::string& what) const {
    template_error(line_of(offset), column_of(offset), what);
  }

  size_t find_tag(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i)
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#'))
        return i;
    return src_.size();
  }

  void emit_text(std::string text, size_t offset) {
    if (text.empty()) return;
    tokens_.push_back(Token{TokenKind::text, std::move(text), line_of(offset), column_of(offset)});
  }

  // After a tag's end: `-` strips all following whitespace; otherwise
  // trim_blocks removes one newline after a block or comment tag.
  size_t after_tag_end(size_t end, bool strip, bool trim) const {
    if (strip) {
      while (end < src_.size() && is_space(src_[end])) ++end;
    } else if (trim && end < src_.size() && src_[end] == '\n') {
      ++end;
    }
    return end;
  }

  size_t skip_comment(size_t tag, size_t inner) const {
    const size_t close = src_.find("#}", inner);
    if (close == std::string::npos) fail(tag, "missing end of comment tag");
    const bool strip = close > inner && src_[close - 1] == '-';
    return after_tag_end(close + 2, strip, true);
  }

  bool is_raw_begin(size_t inner) const {
    size_t i = inner;
    while (i < src_.size() && is_space(src_[i])) ++i;
    if (src_.compare(i, 3, "raw") != 0 || (i + 3 < src_.size() && is_name_char(src_[i + 3])))
      return false;
    i += 3;
    while (i < src_.size() && is_space(src_[i])) ++i;
    if (i < src_.size() && (src_[i] == '-' || src_[i] == '+')) ++i;
    return src_.compare(i, 2, "%}") == 0;
  }

  // {% raw %}...{% endraw %}: the body is text, tags in it are not parsed.
  size_t lex_raw(size_t tag, size_t inner) {
    size_t open_end = src_.find("%}", inner);
    const bool strip_after_open = src_[open_end - 1] == '-';
    size_t body = after_tag_end(open_end + 2, strip_after_open, true);
    for (size_t i = body; i + 1 < src_.size(); ++i) {
      if (src_[i] != '{' || src_[i + 1] != '%') continue;
      size_t j = i + 2;
      const bool strip_before = j < src_.size() && src_[j] == '-';
      if (j < src_.size() && (src_[j] == '-' || src_[j] == '+')) ++j;
      while (j < src_.size() && is_space(src_[j])) ++j;
      if (src_.compare(j, 6, "endraw") != 0) continue;
      j += 6;
      while (j < src_.size() && is_space(src_[j])) ++j;
      const bool strip_after = j < src_.size() && src_[j] == '-';
      if (j < src_.size() && (src_[j] == '-' || src_[j] == '+')) ++j;
      if (src_.compare(j, 2, "%}") != 0) continue;
      std::string text = src_.substr(body, i - body);
      if (strip_before)
        text.erase(std::find_if_not(text.rbegin(), text.rend(), is_space).base(), text.end());
      emit_text(std::move(text), body);
      return after_tag_end(j + 2, strip_after, true);
    }
    fail(tag, "missing endraw");
  }

  size_t lex_tag(char kind, size_t tag, size_t pos) {
    const bool is_block = kind == '%';
    tokens_.push_back(Token{is_block ? TokenKind::block_begin : TokenKind::variable_begin, "",
                            line_of(tag), column_of(tag)});
    const char closer = is_block ? '%' : '}';
    int depth = 0;  // open brackets: an end delimiter inside them is not one
    while (true) {
      while (pos < src_.size() && is_space(src_[pos])) ++pos;
      if (pos >= src_.size())
        fail(tag, is_block ? "unexpected end of template, expected '%}'"
                           : "unexpected end of template, expected '}}'");
      if (depth == 0) {
        size_t p = pos;
        const bool strip = src_[p] == '-';
        const bool keep = src_[p] == '+';
        if (strip || (keep && is_block)) ++p;
        if (p + 1 < src_.size() && src_[p] == closer && src_[p + 1] == '}') {
          tokens_.push_back(Token{is_block ? TokenKind::block_end : TokenKind::variable_end, "",
                                  line_of(pos), column_of(pos)});
          return after_tag_end(p + 2, strip, is_block && !keep);
        }
      }
      pos = lex_token(pos, depth);
    }
  }

  size_t lex_token(size_t pos, int& depth) {
    const int line = line_of(pos);
    const int column = column_of(pos);
    const char c = src_[pos];
    if (is_name_start(c)) {
      size_t end = pos;
      while (end < src_.size() && is_name_char(src_[end])) ++end;
      tokens_.push_back(Token{TokenKind::name, src_.substr(pos, end - pos), line, column});
      return end;
    }
    if (is_digit(c)) return lex_number(pos, line, column);
    if (c == '\'' || c == '"') return lex_string(pos, line, column);
    static const char* const two_char_ops[] = {"//", "**", "==", "!=", "<=", ">="};
    for (const char* op : two_char_ops)
      if (src_.compare(pos, 2, op) == 0) {
        tokens_.push_back(Token{TokenKind::op, op, line, column});
        return pos + 2;
      }
    if (std::string("+-*/%~<>=()[]{},.:|").find(c) != std::string::npos) {
      if (c == '(' || c == '[' || c == '{') ++depth;
      if (c == ')' || c == ']' || c == '}') {
        if (depth == 0) fail(pos, std::string("unexpected '") + c + "'");
        --depth;
      }
      tokens_.push_back(Token{TokenKind::op, std::string(1, c), line, column});
      return pos + 1;
    }
    fail(pos, std::string("unexpected char '") + c + "'");
  }

  size_t lex_number(size_t pos, int line, int column) {
    size_t end = pos;
    const auto digits = [&] {
      while (end < src_.size() && (is_digit(src_[end]) || (src_[end] == '_' && end + 1 < src_.size() &&
                                                            is_digit(src_[end + 1]))))
        ++end;
    };
    digits();
    bool is_float = false;
    if (end + 1 < src_.size() && src_[end] == '.' && is_digit(src_[end + 1])) {
      is_float = true;
      ++end;
      digits();
    }
    if (end < src_.size() && (src_[end] == 'e' || src_[end] == 'E')) {
      size_t e = end + 1;
      if (e < src_.size() && (src_[e] == '+' || src_[e] == '-')) ++e;
      if (e < src_.size() && is_digit(src_[e])) {
        is_float = true;
        end = e;
        digits();
      }
    }
    std::string text = src_.substr(pos, end - pos);
    text.erase(std::remove(text.begin(), text.end(), '_'), text.end());
    tokens_.push_back(Token{is_float ? TokenKind::floating : TokenKind::integer, text, line, column});
    return end;
  }

  // A quoted string with Python's backslash escapes (jinja2 decodes them with
  // "unicode-escape"); an unknown escape keeps its backslash.
  size_t lex_string(size_t pos, int line, int column) {
    const char quote = src_[pos];
    std::string value;
    size_t i = pos + 1;
    while (true) {
      if (i >= src_.size()) fail(pos, "unterminated string");
      const char c = src_[i];
      if (c == quote) break;
      if (c != '\\') {
        value += c;
        ++i;
        continue;
      }
      if (i + 1 >= src_.size()) fail(pos, "unterminated string");
      const char e = src_[i + 1];
      i += 2;
      switch (e) {
        case 'n': value += '\n'; break;
        case 't': value += '\t'; break;
        case 'r': value += '\r'; break;
        case '\\': value += '\\'; break;
        case '\'': value += '\''; break;
        case '"': value += '"'; break;
        case 'a': value += '\a'; break;
        case 'b': value += '\b'; break;
        case 'f': value += '\f'; break;
        case 'v': value += '\v'; break;
        case '\n': break;  // a line continuation
        case 'x':
        case 'u':
        case 'U': {
          const size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (i + n > src_.size()) fail(i, "truncated \\" + std::string(1, e) + " escape");
          const std::string hex = src_.substr(i, n);
          if (hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
            fail(i, "truncated \\" + std::string(1, e) + " escape");
          const unsigned long cp = std::stoul(hex, nullptr, 16);
          if (cp > 0x10FFFF) fail(i, "illegal Unicode character");
          text::append_utf8(value, static_cast<char32_t>(cp));
          i += n;
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            unsigned cp = static_cast<unsigned>(e - '0');
            for (int k = 0; k < 2 && i < src_.size() && src_[i] >= '0' && src_[i] <= '7'; ++k, ++i)
              cp = cp * 8 + static_cast<unsigned>(src_[i] - '0');
            text::append_utf8(value, static_cast<char32_t>(cp));
          } else {
            value += '\\';
            value += e;
          }
      }
    }
    tokens_.push_back(Token{TokenKind::string, std::move(value), line, column});
    return i + 1;
  }

  std::string src_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(const std::string& source) {
  return Lexer(normalize_newlines(source)).run();
}

}  // namespace mmfuse::jinja
