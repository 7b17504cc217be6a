#include "generate/jinja_builtins.h"

#include <utf8proc.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "mmfuse/error.h"
#include "text/unicode_text.h"

namespace mmfuse::jinja {

namespace {

[[noreturn]] void fail(const std::string& what) {
  throw_error(ErrorKind::bad_input, "chat template: " + what);
}

// ---- argument helpers

const Value* find_kwarg(const KeywordArgs& kwargs, const char* name) {
  for (const auto& [k, v] : kwargs)
    if (k == name) return &v;
  return nullptr;
}

// The argument at `index`, or the keyword `name`, or `fallback`.
Value arg(const List& args, const KeywordArgs& kwargs, size_t index, const char* name,
          Value fallback = Undefined{}) {
  if (index < args.size()) return args[index];
  if (const Value* v = find_kwarg(kwargs, name)) return *v;
  return fallback;
}

const std::string& need_string(const Value& v, const char* what) {
  if (!v.is_string()) fail(std::string(what) + " expects a string, got " + type_name(v));
  return v.as_string();
}

int64_t need_int(const Value& v, const char* what) {
  if (!v.is_int() && !v.is_bool()) fail(std::string(what) + " expects an integer, got " + type_name(v));
  return v.to_int();
}

// ---- Unicode helpers (Python str operates on code points)

std::u32string u32(const std::string& s) { return text::decode_utf8(s); }
std::string u8(std::u32string_view s) { return text::encode_utf8(s); }

char32_t upper_cp(char32_t c) {
  return c < 0x80 ? static_cast<char32_t>(std::toupper(static_cast<int>(c)))
                  : static_cast<char32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(c)));
}
char32_t lower_cp(char32_t c) {
  return c < 0x80 ? static_cast<char32_t>(std::tolower(static_cast<int>(c)))
                  : static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c)));
}
bool is_cased_letter(char32_t c) { return text::is_letter(c) && (upper_cp(c) != c || lower_cp(c) != c); }

std::string str_upper(const std::string& s) {
  std::u32string w = u32(s);
  for (char32_t& c : w) c = upper_cp(c);
  return u8(w);
}
std::string str_lower(const std::string& s) { return u8(text::python_lower(u32(s))); }

// str.title(): a cased letter after a cased letter is lowered, others raised.
std::string str_title(const std::string& s) {
  std::u32string w = u32(s);
  bool previous_cased = false;
  for (char32_t& c : w) {
    c = previous_cased ? lower_cp(c) : upper_cp(c);
    previous_cased = is_cased_letter(c);
  }
  return u8(w);
}

std::string str_capitalize(const std::string& s) {
  std::u32string w = u32(s);
  for (size_t i = 0; i < w.size(); ++i) w[i] = i == 0 ? upper_cp(w[i]) : lower_cp(w[i]);
  return u8(w);
}

// The `title` filter: each run split off by [-\s({\[<]+ gets its first
// character raised and the rest lowered.
std::string filter_title(const std::string& s) {
  const std::u32string w = u32(s);
  const auto is_sep = [](char32_t c) {
    return text::is_unicode_white_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
  };
  std::u32string out;
  size_t i = 0;
  while (i < w.size()) {
    size_t j = i;
    const bool sep = is_sep(w[i]);
    while (j < w.size() && is_sep(w[j]) == sep) ++j;
    if (sep) {
      out.append(w, i, j - i);
    } else {
      out += upper_cp(w[i]);
      for (size_t k = i + 1; k < j; ++k) out += lower_cp(w[k]);
    }
    i = j;
  }
  return u8(out);
}

bool is_python_space(char32_t c) { return text::is_python_space(c); }

// str.strip / lstrip / rstrip with chars None (whitespace) or a set of chars.
std::string str_strip(const std::string& s, const Value& chars, bool left, bool right) {
  const std::u32string w = u32(s);
  std::u32string set;
  const bool whitespace = chars.is_none() || chars.is_undefined();
  if (!whitespace) set = u32(need_string(chars, "strip"));
  const auto strip_it = [&](char32_t c) {
    return whitespace ? is_python_space(c) : set.find(c) != std::u32string::npos;
  };
  size_t b = 0, e = w.size();
  if (left)
    while (b < e && strip_it(w[b])) ++b;
  if (right)
    while (e > b && strip_it(w[e - 1])) --e;
  return u8(std::u32string_view(w).substr(b, e - b));
}

List str_split(const std::string& s, const Value& sep, int64_t maxsplit, bool from_right) {
  List out;
  if (sep.is_none() || sep.is_undefined()) {
    std::u32string w = u32(s);
    // Whitespace runs separate; leading/trailing whitespace gives no empty parts.
    std::vector<std::u32string> parts;
    if (!from_right) {
      size_t i = 0;
      while (true) {
        while (i < w.size() && is_python_space(w[i])) ++i;
        if (i >= w.size()) break;
        if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
          size_t e = w.size();
          while (e > i && is_python_space(w[e - 1])) --e;
          parts.push_back(w.substr(i, e - i));
          break;
        }
        size_t j = i;
        while (j < w.size() && !is_python_space(w[j])) ++j;
        parts.push_back(w.substr(i, j - i));
        i = j;
      }
    } else {
      size_t i = w.size();
      while (true) {
        while (i > 0 && is_python_space(w[i - 1])) --i;
        if (i == 0) break;
        if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
          size_t b = 0;
          while (b < i && is_python_space(w[b])) ++b;
          parts.push_back(w.substr(b, i - b));
          break;
        }
        size_t j = i;
        while (j > 0 && !is_python_space(w[j - 1])) --j;
        parts.push_back(w.substr(j, i - j));
        i = j;
      }
      std::reverse(parts.begin(), parts.end());
    }
    for (const auto& p : parts) out.push_back(u8(p));
    return out;
  }
  const std::string& separator = need_string(sep, "split");
  if (separator.empty()) fail("split: empty separator");
  std::vector<std::string> parts;
  if (!from_right) {
    size_t start = 0;
    while (true) {
      const size_t hit = s.find(separator, start);
      if (hit == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit)) {
        parts.push_back(s.substr(start));
        break;
      }
      parts.push_back(s.substr(start, hit - start));
      start = hit + separator.size();
    }
  } else {
    size_t end = s.size();
    while (true) {
      const size_t hit = end >= separator.size() ? s.rfind(separator, end - separator.size()) : std::string::npos;
      if (hit == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit)) {
        parts.push_back(s.substr(0, end));
        break;
      }
      parts.push_back(s.substr(hit + separator.size(), end - hit - separator.size()));
      end = hit;
    }
    std::reverse(parts.begin(), parts.end());
  }
  for (auto& p : parts) out.push_back(std::move(p));
  return out;
}

std::string str_replace(const std::string& s, const std::string& old, const std::string& replacement,
                        int64_t count) {
  std::string out;
  int64_t done = 0;
  if (old.empty()) {
    // Python inserts the replacement before every code point and at the end.
    const std::u32string w = u32(s);
    for (char32_t c : w) {
      if (count < 0 || done < count) {
        out += replacement;
        ++done;
      }
      text::append_utf8(out, c);
    }
    if (count < 0 || done < count) out += replacement;
    return out;
  }
  size_t start = 0;
  while (true) {
    const size_t hit = s.find(old, start);
    if (hit == std::string::npos || (count >= 0 && done >= count)) break;
    out.append(s, start, hit - start);
    out += replacement;
    start = hit + old.size();
    ++done;
  }
  out.append(s, start, std::string::npos);
  return out;
}

bool affix_matches(const std::string& s, const Value& affix, bool prefix) {
  const auto one = [&](const Value& a) {
    const std::string& p = need_string(a, prefix ? "startswith" : "endswith");
    if (p.size() > s.size()) return false;
    return prefix ? s.compare(0, p.size(), p) == 0 : s.compare(s.size() - p.size(), p.size(), p) == 0;
  };
  if (affix.is_list()) {
    for (const Value& a : affix.as_list())
      if (one(a)) return true;
    return false;
  }
  return one(affix);
}

int64_t count_substring(const std::string& s, const std::string& sub) {
  if (sub.empty()) return static_cast<int64_t>(u32(s).size()) + 1;
  int64_t n = 0;
  for (size_t at = s.find(sub); at != std::string::npos; at = s.find(sub, at + sub.size())) ++n;
  return n;
}

// Byte offset -> code point offset, for find() results.
int64_t code_point_offset(const std::string& s, size_t byte_offset) {
  int64_t n = 0;
  for (size_t i = 0; i < byte_offset && i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) ++n;
  return n;
}

List split_lines(const std::string& s) {
  List out;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' || s[i] == '\r') {
      out.push_back(s.substr(start, i - start));
      if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
      start = i + 1;
    }
  }
  if (start < s.size()) out.push_back(s.substr(start));
  return out;
}

// ---- comparisons and attribute paths

// Python's a < b for the types templates sort or compare.
bool less_than(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) return a.to_double() < b.to_double();
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();  // UTF-8 keeps code point order
  if (a.is_list() && b.is_list()) {
    const List& x = a.as_list();
    const List& y = b.as_list();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (equals(x[i], y[i])) continue;
      return less_than(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  fail("'<' not supported between instances of '" + type_name(a) + "' and '" + type_name(b) + "'");
}

// environment.getitem for each part of "a.b.0" (jinja2's make_attrgetter).
Value attribute_path(const Value& item, const std::string& path) {
  Value v = item;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    // (more than 18 digits cannot be an index: looked up as a string key instead)
    const bool numeric = !part.empty() && part.size() <= 18 &&
                         std::all_of(part.begin(), part.end(), ::isdigit);
    v = numeric ? get_item(v, Value(static_cast<int64_t>(std::stoll(part)))) : get_item(v, Value(part));
    if (dot == std::string::npos) return v;
    start = dot + 1;
  }
}

bool contains(const Value& container, const Value& item) {
  if (container.is_string()) {
    if (!item.is_string())
      fail("'in <string>' requires string as left operand, not " + type_name(item));
    return container.as_string().find(item.as_string()) != std::string::npos;
  }
  if (container.is_dict()) return item.is_string() && container.as_dict().find(item.as_string()) != nullptr;
  if (container.is_list()) {
    for (const Value& v : container.as_list())
      if (equals(v, item)) return true;
    return false;
  }
  if (container.is_undefined()) return false;
  fail("argument of type '" + type_name(container) + "' is not iterable");
}

// ---- filters

using FilterFn = Value (*)(const Value& input, const List& args, const KeywordArgs& kwargs);

std::string python_int_text(std::string s) {
  const std::string trimmed = str_strip(s, None{}, true, true);
  std::string out;
  for (char c : trimmed)
    if (c != '_') out += c;
  return out;
}

Value filter_int(const Value& input, const List& args, const KeywordArgs& kwargs) {
  const Value fallback = arg(args, kwargs, 0, "default", Value(int64_t{0}));
  const int64_t base = need_int(arg(args, kwargs, 1, "base", Value(int64_t{10})), "int");
  if (input.is_int() || input.is_bool()) return input.to_int();
  if (input.is_float()) {
    const double f = input.as_float();
    if (!std::isfinite(f) || std::fabs(f) > 9.2e18) return fallback;
    return static_cast<int64_t>(f);
  }
  if (input.is_string()) {
    const std::string text = python_int_text(input.as_string());
    if (!text.empty()) {
      size_t used = 0;
      try {
        const long long v = std::stoll(text, &used, static_cast<int>(base));
        if (used == text.size()) return static_cast<int64_t>(v);
      } catch (const std::exception&) {
      }
      try {  // int(float(value)) as jinja2 falls back to
        const double f = std::stod(text, &used);
        if (used == text.size() && std::isfinite(f) && std::fabs(f) < 9.2e18) return static_cast<int64_t>(f);
      } catch (const std::exception&) {
      }
    }
  }
  return fallback;
}

Value filter_float(const Value& input, const List& args, const KeywordArgs& kwargs) {
  const Value fallback = arg(args, kwargs, 0, "default", Value(0.0));
  if (input.is_number()) return input.to_double();
  if (input.is_string()) {
    const std::string text = python_int_text(input.as_string());
    try {
      size_t used = 0;
      const double f = std::stod(text, &used);
      if (used == text.size()) return f;
    } catch (const std::exception&) {
    }
  }
  return fallback;
}

Value filter_length(const Value& input, const List&, const KeywordArgs&) { return length(input); }

Value filter_tojson(const Value& input, const List& args, const KeywordArgs& kwargs) {
  // transformers' tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
  const Value ensure_ascii = arg(args, kwargs, 0, "ensure_ascii", false);
  const Value indent = arg(args, kwargs, 1, "indent", None{});
  const Value separators = arg(args, kwargs, 2, "separators", None{});
  const Value sort_keys = arg(args, kwargs, 3, "sort_keys", false);
  if (truthy(ensure_ascii) || truthy(sort_keys) || !(separators.is_none() || separators.is_undefined()))
    throw_error(ErrorKind::unsupported,
                "chat template: tojson supports only the indent argument (ensure_ascii, separators "
                "and sort_keys keep their defaults)");
  if (indent.is_none() || indent.is_undefined()) return to_json(input, -1);
  const int64_t n = need_int(indent, "tojson indent");
  return to_json(input, static_cast<int>(std::clamp<int64_t>(n, 0, 64)));
}

Value filter_trim(const Value& input, const List& args, const KeywordArgs& kwargs) {
  return str_strip(to_str(input), arg(args, kwargs, 0, "chars", None{}), true, true);
}

Value filter_upper(const Value& input, const List&, const KeywordArgs&) { return str_upper(to_str(input)); }
Value filter_lower(const Value& input, const List&, const KeywordArgs&) { return str_lower(to_str(input)); }
Value filter_title(const Value& input, const List&, const KeywordArgs&) { return filter_title(to_str(input)); }
Value filter_capitalize(const Value& input, const List&, const KeywordArgs&) {
  return str_capitalize(to_str(input));
}
Value filter_string(const Value& input, const List&, const KeywordArgs&) { return to_str(input); }
Value filter_safe(const Value& input, const List&, const KeywordArgs&) { return input; }

Value filter_escape(const Value& input, const List&, const KeywordArgs&) {
  std::string out;
  for (char c : to_str(input)) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

Value filter_replace(const Value& input, const List& args, const KeywordArgs& kwargs) {
  const Value count = arg(args, kwargs, 2, "count", None{});
  return str_replace(to_str(input), to_str(arg(args, kwargs, 0, "old")), to_str(arg(args, kwargs, 1, "new")),
                     count.is_none() || count.is_undefined() ? -1 : need_int(count, "replace count"));
}

Value filter_join(const Value& input, const List& args, const KeywordArgs& kwargs) {
  const std::string separator = to_str(arg(args, kwargs, 0, "d", ""));
  const Value attribute = arg(args, kwargs, 1, "attribute", None{});
  std::string out;
  bool first = true;
  for (const Value& item : iterate(input)) {
    if (!first) out += separator;
    first = false;
    out += to_str(attribute.is_string() ? attribute_path(item, attribute.as_string()) : item);
  }
  return out;
}

Value filter_first(const Value& input, const List&, const KeywordArgs&) {
  const List items = iterate(input);
  return items.empty() ? Value(Undefined{"first"}) : items.front();
}

Value filter_last(const Value& input, const List&, const KeywordArgs&) {
  const List items = iterate(input);
  return items.empty() ? Value(Undefined{"last"}) : items.back();
}

Value filter_default(const Value& input, const List& args, const KeywordArgs& kwargs) {
  const Value fallback = arg(args, kwargs, 0, "default_value", "");
  const bool boolean = truthy(arg(args, kwargs, 1, "boolean", false));
  if (input.is_undefined() || (boolean && !truthy(input))) return fallback;
  return input;
}

Value filter_items(const Value& input, const List&, const KeywordArgs&) {
  if (input.is_undefined()) return List{};
  if (!input.is_dict()) fail("items filter: can only get item pairs from a mapping");
  List out;
  for (const auto& [k, v] : input.as_dict().items) out.push_back(Value::tuple(List{Value(k), v}));
  return out;
}

Value filter_list(const Value& input, const List&, const KeywordArgs&) { return iterate(input); }

Value filter_abs(const Value& input, const List&, const KeywordArgs&) {
  if (input.is_float()) return std::fabs(input.as_float());
  if (input.is_int() || input.is_bool()) return static_cast<int64_t>(std::llabs(input.to_int()));
  fail("bad operand type for abs(): '" + type_name(input) + "'");
}

Value filter_round(const Value& input, const List& args, const KeywordArgs& kwargs) {
  const int64_t precision = need_int(arg(args, kwargs, 0, "precision", Value(int64_t{0})), "round");
  const std::string method = to_str(arg(args, kwargs, 1, "method", "common"));
  if (!input.is_number()) fail("round expects a number");
  const double scale = std::pow(10.0, static_cast<double>(precision));
  double v = input.to_double() * scale;
  if (method == "common") {
    v = std::round(v);
  } else if (method == "floor") {
    v = std::floor(v);
  } else if (method == "ceil") {
    v = std::ceil(v);
  } else {
    fail("round: method must be common, ceil or floor");
  }
  return v / scale;
}

Value filter_reverse(const Value& input, const List&, const KeywordArgs&) {
  if (input.is_string()) {
    std::u32string w = u32(input.as_string());
    std::reverse(w.begin(), w.end());
    return u8(w);
  }
  List items = iterate(input);
  std::reverse(items.begin(), items.end());
  return items;
}

Value filter_sum(const Value& input, const List& args, const KeywordArgs& kwargs) {
  const Value attribute = arg(args, kwargs, 0, "attribute", None{});
  Value total = arg(args, kwargs, 1, "start", Value(int64_t{0}));
  for (const Value& item : iterate(input)) {
    const Value v = attribute.is_string() ? attribute_path(item, attribute.as_string()) : item;
    if (!v.is_number() || !total.is_number()) fail("sum: unsupported operand types");
    if (v.is_float() || total.is_float()) {
      total = total.to_double() + v.to_double();
    } else {
      total = total.to_int() + v.to_int();
    }
  }
  return total;
}

Value sort_key(const Value& item, const Value& attribute, bool case_sensitive) {
  Value key = attribute.is_string() ? attribute_path(item, attribute.as_string()) : item;
  if (!case_sensitive && key.is_string()) key = str_lower(key.as_string());
  return key;
}

Value filter_sort(const Value& input, const List& args, const KeywordArgs& kwargs) {
  const bool reverse = truthy(arg(args, kwargs, 0, "reverse", false));
  const bool case_sensitive = truthy(arg(args, kwargs, 1, "case_sensitive", false));
  const Value attribute = arg(args, kwargs, 2, "attribute", None{});
  List items = iterate(input);
  std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
    const Value ka = sort_key(a, attribute, case_sensitive);
    const Value kb = sort_key(b, attribute, case_sensitive);
    return reverse ? less_than(kb, ka) : less_than(ka, kb);
  });
  return items;
}

Value min_max(const Value& input, const List& args, const KeywordArgs& kwargs, bool want_max) {
  const bool case_sensitive = truthy(arg(args, kwargs, 0, "case_sensitive", false));
  const Value attribute = arg(args, kwargs, 1, "attribute", None{});
  const List items = iterate(input);
  if (items.empty()) return Undefined{want_max ? "max" : "min"};
  const Value* best = &items.front();
  for (const Value& item : items) {
    const Value k = sort_key(item, attribute, case_sensitive);
    const Value kb = sort_key(*best, attribute, case_sensitive);
    if (want_max ? less_than(kb, k) : less_than(k, kb)) best = &item;
  }
  return *best;
}
Value filter_min(const Value& input, const List& a, const KeywordArgs& k) { return min_max(input, a, k, false); }
Value filter_max(const Value& input, const List& a, const KeywordArgs& k) { return min_max(input, a, k, true); }

Value filter_unique(const Value& input, const List& args, const KeywordArgs& kwargs) {
  const bool case_sensitive = truthy(arg(args, kwargs, 0, "case_sensitive", false));
  const Value attribute = arg(args, kwargs, 1, "attribute", None{});
  List out, seen;
  for (const Value& item : iterate(input)) {
    const Value key = sort_key(item, attribute, case_sensitive);
    if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return equals(s, key); })) continue;
    seen.push_back(key);
    out.push_back(item);
  }
  return out;
}

// select / reject / selectattr / rejectattr: args are (attribute?, test, test args...).
Value select_items(const Value& input, const List& args, bool by_attribute, bool keep) {
  size_t next = 0;
  std::string attribute;
  if (by_attribute) {
    if (args.empty()) fail("selectattr/rejectattr need an attribute name");
    attribute = need_string(args[next++], "selectattr attribute");
  }
  std::string test;
  if (next < args.size()) test = need_string(args[next++], "select test name");
  const List test_args(args.begin() + static_cast<std::ptrdiff_t>(next), args.end());
  if (!test.empty() && !is_known_test(test)) fail("no test named '" + test + "'");
  List out;
  for (const Value& item : iterate(input)) {
    const Value v = by_attribute ? attribute_path(item, attribute) : item;
    const bool passed = test.empty() ? truthy(v) : apply_test(test, v, test_args);
    if (passed == keep) out.push_back(item);
  }
  return out;
}
Value filter_select(const Value& input, const List& a, const KeywordArgs&) { return select_items(input, a, false, true); }
Value filter_reject(const Value& input, const List& a, const KeywordArgs&) { return select_items(input, a, false, false); }
Value filter_selectattr(const Value& input, const List& a, const KeywordArgs&) {
  return select_items(input, a, true, true);
}
Value filter_rejectattr(const Value& input, const List& a, const KeywordArgs&) {
  return select_items(input, a, true, false);
}

Value filter_map(const Value& input, const List& args, const KeywordArgs& kwargs) {
  List out;
  if (const Value* attribute = find_kwarg(kwargs, "attribute")) {
    const Value* fallback = find_kwarg(kwargs, "default");
    for (const Value& item : iterate(input)) {
      Value v = attribute_path(item, need_string(*attribute, "map attribute"));
      out.push_back(v.is_undefined() && fallback != nullptr ? *fallback : v);
    }
    return out;
  }
  if (args.empty()) return iterate(input);
  const std::string& filter = need_string(args[0], "map filter name");
  if (!is_known_filter(filter)) fail("no filter named '" + filter + "'");
  const List filter_args(args.begin() + 1, args.end());
  for (const Value& item : iterate(input)) out.push_back(apply_filter(filter, item, filter_args, kwargs));
  return out;
}

Value filter_attr(const Value& input, const List& args, const KeywordArgs& kwargs) {
  return get_attr(input, need_string(arg(args, kwargs, 0, "name"), "attr"));
}

Value filter_indent(const Value& input, const List& args, const KeywordArgs& kwargs) {
  const Value width = arg(args, kwargs, 0, "width", Value(int64_t{4}));
  const bool first = truthy(arg(args, kwargs, 1, "first", false));
  const bool blank = truthy(arg(args, kwargs, 2, "blank", false));
  const std::string indention =
      width.is_string() ? width.as_string()
                        : std::string(static_cast<size_t>(std::clamp<int64_t>(need_int(width, "indent"), 0, 256)), ' ');
  const List lines = split_lines(to_str(input) + "\n");
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i].as_string();
    if (i > 0) out += "\n";
    if (i > 0 && (blank || !line.empty())) out += indention;
    out += line;
  }
  if (first) out = indention + out;
  return out;
}

const std::map<std::string, FilterFn>& filters() {
  static const std::map<std::string, FilterFn> table = {
      {"abs", filter_abs},
      {"attr", filter_attr},
      {"capitalize", filter_capitalize},
      {"count", filter_length},
      {"d", filter_default},
      {"default", filter_default},
      {"e", filter_escape},
      {"escape", filter_escape},
      {"first", filter_first},
      {"float", filter_float},
      {"indent", filter_indent},
      {"int", filter_int},
      {"items", filter_items},
      {"join", filter_join},
      {"last", filter_last},
      {"length", filter_length},
      {"list", filter_list},
      {"lower", filter_lower},
      {"map", filter_map},
      {"max", filter_max},
      {"min", filter_min},
      {"reject", filter_reject},
      {"rejectattr", filter_rejectattr},
      {"replace", filter_replace},
      {"reverse", filter_reverse},
      {"round", filter_round},
      {"safe", filter_safe},
      {"select", filter_select},
      {"selectattr", filter_selectattr},
      {"sort", filter_sort},
      {"string", filter_string},
      {"sum", filter_sum},
      {"title", filter_title},
      {"tojson", filter_tojson},
      {"trim", filter_trim},
      {"unique", filter_unique},
      {"upper", filter_upper},
  };
  return table;
}

// ---- tests

bool test_sameas(const Value& a, const Value& b) {
  if (a.storage().index() != b.storage().index()) return false;
  if (a.is_none() || a.is_undefined()) return true;
  if (a.is_bool()) return a.as_bool() == b.as_bool();
  if (a.is_int()) return a.as_int() == b.as_int() && a.as_int() >= -5 && a.as_int() <= 256;  // CPython's small ints
  if (a.is_string()) return a.as_string() == b.as_string();
  if (a.is_list()) return &a.as_list() == &b.as_list();
  if (a.is_dict()) return &a.as_dict() == &b.as_dict();
  if (a.is_callable()) return &a.as_callable() == &b.as_callable();
  if (a.is_namespace()) return &a.as_namespace() == &b.as_namespace();
  return false;
}

bool all_cased(const std::string& s, bool want_upper) {
  bool any = false;
  for (char32_t c : u32(s)) {
    if (!is_cased_letter(c)) continue;
    any = true;
    if ((want_upper && upper_cp(c) != c) || (!want_upper && lower_cp(c) != c)) return false;
  }
  return any;
}

const std::vector<std::string>& test_names() {
  static const std::vector<std::string> names = {
      "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "==", "escaped", "even",
      "false", "filter", "float", "ge", ">=", "gt", ">", "greaterthan", "in", "integer", "iterable",
      "le", "<=", "lower", "lt", "<", "lessthan", "mapping", "ne", "!=", "none", "number", "odd",
      "sameas", "sequence", "string", "test", "true", "undefined", "upper"};
  return names;
}

}  // namespace

// ---- public entry points

bool is_known_filter(const std::string& name) { return filters().count(name) > 0; }

bool is_known_test(const std::string& name) {
  const auto& names = test_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

Value apply_filter(const std::string& name, const Value& input, const List& args, const KeywordArgs& kwargs) {
  const auto it = filters().find(name);
  if (it == filters().end()) fail("no filter named '" + name + "'");
  return it->second(input, args, kwargs);
}

bool apply_test(const std::string& name, const Value& v, const List& args) {
  const auto operand = [&]() -> const Value& {
    if (args.empty()) fail("test '" + name + "' needs an argument");
    return args[0];
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.as_bool();
  if (name == "false") return v.is_bool() && !v.as_bool();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict();
  if (name == "number") return v.is_number();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "callable") return v.is_callable();
  if (name == "iterable") return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
  if (name == "sequence") return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
  if (name == "escaped") return false;
  if (name == "lower") return v.is_string() && all_cased(v.as_string(), false);
  if (name == "upper") return v.is_string() && all_cased(v.as_string(), true);
  if (name == "odd" || name == "even") {
    const int64_t n = need_int(v, name.c_str());
    return ((n % 2) != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    const int64_t d = need_int(operand(), "divisibleby");
    if (d == 0) fail("integer division or modulo by zero");
    return need_int(v, "divisibleby") % d == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==") return equals(v, operand());
  if (name == "ne" || name == "!=") return !equals(v, operand());
  if (name == "lt" || name == "<" || name == "lessthan") return less_than(v, operand());
  if (name == "gt" || name == ">" || name == "greaterthan") return less_than(operand(), v);
  if (name == "le" || name == "<=") return !less_than(operand(), v);
  if (name == "ge" || name == ">=") return !less_than(v, operand());
  if (name == "in") return contains(operand(), v);
  if (name == "sameas") return test_sameas(v, operand());
  if (name == "filter") return v.is_string() && is_known_filter(v.as_string());
  if (name == "test") return v.is_string() && is_known_test(v.as_string());
  fail("no test named '" + name + "'");
}

List iterate(const Value& v) {
  if (v.is_list()) return v.as_list();
  if (v.is_dict()) {
    List keys;
    for (const auto& [k, item] : v.as_dict().items) keys.push_back(k);
    return keys;
  }
  if (v.is_string()) {
    List chars;
    for (char32_t c : u32(v.as_string())) {
      std::string one;
      text::append_utf8(one, c);
      chars.push_back(std::move(one));
    }
    return chars;
  }
  if (v.is_undefined()) return {};
  fail("'" + type_name(v) + "' object is not iterable");
}

int64_t length(const Value& v) {
  if (v.is_string()) return code_point_offset(v.as_string(), v.as_string().size());
  if (v.is_list()) return static_cast<int64_t>(v.as_list().size());
  if (v.is_dict()) return static_cast<int64_t>(v.as_dict().items.size());
  if (v.is_undefined()) return 0;
  fail("object of type '" + type_name(v) + "' has no len()");
}

Value get_item(const Value& object, const Value& key) {
  if (object.is_dict()) {
    if (key.is_string()) {
      if (const Value* v = object.as_dict().find(key.as_string())) return *v;
      return bound_method(object, key.as_string());
    }
    return Undefined{to_str(key)};
  }
  if ((object.is_list() || object.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t i = key.to_int();
    if (object.is_list()) {
      const List& list = object.as_list();
      const int64_t n = static_cast<int64_t>(list.size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) return Undefined{"[" + std::to_string(key.to_int()) + "]"};
      return list[static_cast<size_t>(i)];
    }
    const std::u32string w = u32(object.as_string());
    const int64_t n = static_cast<int64_t>(w.size());
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Undefined{"[" + std::to_string(key.to_int()) + "]"};
    return u8(w.substr(static_cast<size_t>(i), 1));
  }
  if (key.is_string()) return get_attr(object, key.as_string());
  return Undefined{to_str(key)};
}

Value get_attr(const Value& object, const std::string& name) {
  if (object.is_namespace()) {
    if (const Value* v = object.as_namespace().attributes.find(name)) return *v;
    return Undefined{name};
  }
  Value method = bound_method(object, name);
  if (!method.is_undefined()) return method;
  if (object.is_dict())
    if (const Value* v = object.as_dict().find(name)) return *v;
  return Undefined{name};
}

namespace {

Value string_method(const std::string& s, const std::string& name, const List& args, const KeywordArgs& kwargs) {
  if (name == "strip" || name == "lstrip" || name == "rstrip")
    return str_strip(s, arg(args, kwargs, 0, "chars", None{}), name != "rstrip", name != "lstrip");
  if (name == "split" || name == "rsplit") {
    const Value maxsplit = arg(args, kwargs, 1, "maxsplit", Value(int64_t{-1}));
    return str_split(s, arg(args, kwargs, 0, "sep", None{}), need_int(maxsplit, "split maxsplit"),
                     name == "rsplit");
  }
  if (name == "startswith" || name == "endswith")
    return affix_matches(s, arg(args, kwargs, 0, "prefix"), name == "startswith");
  if (name == "upper") return str_upper(s);
  if (name == "lower") return str_lower(s);
  if (name == "title") return str_title(s);
  if (name == "capitalize") return str_capitalize(s);
  if (name == "replace") {
    const Value count = arg(args, kwargs, 2, "count", Value(int64_t{-1}));
    return str_replace(s, need_string(arg(args, kwargs, 0, "old"), "replace"),
                       need_string(arg(args, kwargs, 1, "new"), "replace"), need_int(count, "replace count"));
  }
  if (name == "join") {
    std::string out;
    bool first = true;
    for (const Value& item : iterate(arg(args, kwargs, 0, "iterable"))) {
      if (!first) out += s;
      first = false;
      out += need_string(item, "join");
    }
    return out;
  }
  if (name == "find" || name == "rfind" || name == "index") {
    const std::string sub = need_string(arg(args, kwargs, 0, "sub"), name.c_str());
    const size_t at = name == "rfind" ? s.rfind(sub) : s.find(sub);
    if (at == std::string::npos) {
      if (name == "index") fail("substring not found");
      return int64_t{-1};
    }
    return code_point_offset(s, at);
  }
  if (name == "count") return count_substring(s, need_string(arg(args, kwargs, 0, "sub"), "count"));
  if (name == "splitlines") return split_lines(s);
  if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace") {
    const std::u32string w = u32(s);
    if (w.empty()) return false;
    return std::all_of(w.begin(), w.end(), [&](char32_t c) {
      if (name == "isdigit") return c >= '0' && c <= '9';
      if (name == "isalpha") return text::is_letter(c);
      if (name == "isalnum") return text::is_letter(c) || text::is_number(c);
      return is_python_space(c);
    });
  }
  if (name == "islower") return all_cased(s, false);
  if (name == "isupper") return all_cased(s, true);
  fail("str has no method '" + name + "'");
}

Value dict_method(const Value& self, const std::string& name, const List& args, const KeywordArgs& kwargs) {
  const Dict& d = self.as_dict();
  if (name == "items") return filter_items(self, {}, {});
  if (name == "keys") return iterate(self);
  if (name == "values") {
    List out;
    for (const auto& [k, v] : d.items) out.push_back(v);
    return out;
  }
  if (name == "get") {
    const Value key = arg(args, kwargs, 0, "key");
    const Value fallback = arg(args, kwargs, 1, "default", None{});
    if (!key.is_string()) return fallback;
    const Value* v = d.find(key.as_string());
    return v != nullptr ? *v : fallback;
  }
  fail("dict has no method '" + name + "'");
}

bool is_string_method(const std::string& name) {
  static const char* const names[] = {"strip", "lstrip", "rstrip", "split", "rsplit", "startswith",
                                      "endswith", "upper", "lower", "title", "capitalize", "replace",
                                      "join", "find", "rfind", "index", "count", "splitlines",
                                      "isdigit", "isalpha", "isalnum", "isspace", "islower", "isupper"};
  return std::any_of(std::begin(names), std::end(names), [&](const char* n) { return name == n; });
}

bool is_dict_method(const std::string& name) {
  return name == "items" || name == "keys" || name == "values" || name == "get";
}

}  // namespace

Value bound_method(const Value& object, const std::string& name) {
  if (object.is_string() && is_string_method(name)) {
    const std::string self = object.as_string();
    return Callable{"str." + name, [self, name](const List& args, const KeywordArgs& kwargs) {
                      return string_method(self, name, args, kwargs);
                    }};
  }
  if (object.is_dict() && is_dict_method(name)) {
    return Callable{"dict." + name, [object, name](const List& args, const KeywordArgs& kwargs) {
                      return dict_method(object, name, args, kwargs);
                    }};
  }
  return Undefined{name};
}

Dict global_functions() {
  Dict g;
  g.set("raise_exception", Callable{"raise_exception", [](const List& args, const KeywordArgs& kwargs) -> Value {
                                      throw_error(ErrorKind::bad_input, to_str(arg(args, kwargs, 0, "message")));
                                    }});
  g.set("range", Callable{"range", [](const List& args, const KeywordArgs&) -> Value {
                            if (args.empty() || args.size() > 3) fail("range expects 1 to 3 arguments");
                            int64_t start = 0, stop = 0, step = 1;
                            if (args.size() == 1) {
                              stop = need_int(args[0], "range");
                            } else {
                              start = need_int(args[0], "range");
                              stop = need_int(args[1], "range");
                              if (args.size() == 3) step = need_int(args[2], "range");
                            }
                            if (step == 0) fail("range() arg 3 must not be zero");
                            // The sandbox's MAX_RANGE.
                            const double n = std::ceil((static_cast<double>(stop) - static_cast<double>(start)) /
                                                       static_cast<double>(step));
                            if (n > 100000)
                              fail("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
                            List out;
                            for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) out.push_back(i);
                            return out;
                          }});
  g.set("namespace", Callable{"namespace", [](const List& args, const KeywordArgs& kwargs) -> Value {
                                auto ns = std::make_shared<Namespace>();
                                for (const Value& a : args) {
                                  if (!a.is_dict()) fail("namespace() takes a mapping or keyword arguments");
                                  for (const auto& [k, v] : a.as_dict().items) ns->attributes.set(k, v);
                                }
                                for (const auto& [k, v] : kwargs) ns->attributes.set(k, v);
                                return ns;
                              }});
  g.set("dict", Callable{"dict", [](const List& args, const KeywordArgs& kwargs) -> Value {
                           Dict d;
                           for (const Value& a : args) {
                             if (!a.is_dict()) fail("dict() takes a mapping or keyword arguments");
                             for (const auto& [k, v] : a.as_dict().items) d.set(k, v);
                           }
                           for (const auto& [k, v] : kwargs) d.set(k, v);
                           return d;
                         }});
  return g;
}

}  // namespace mmfuse::jinja
