#include "text/unicode_text.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

namespace mmfuse::text {

namespace {

constexpr char32_t kReplacement = 0xFFFD;

struct Range {
  char32_t lo, hi;
};

// Code points assigned in Unicode 15.0 (utf8proc 2.8) that are unassigned (Cn) in
// Unicode 14.0 (Python 3.11's unicodedata). Derived by comparing the two tables
// over all code points. The HF clean-up drops them as category C.
constexpr Range kAssignedAfterUnicode14[] = {
    {0x0CF3, 0x0CF3},   {0x0ECE, 0x0ECE},   {0x10EFD, 0x10EFF}, {0x1123F, 0x11241},
    {0x11B00, 0x11B09}, {0x11F00, 0x11F10}, {0x11F12, 0x11F3A}, {0x11F3E, 0x11F59},
    {0x1342F, 0x1342F}, {0x13439, 0x13455}, {0x1B132, 0x1B132}, {0x1B155, 0x1B155},
    {0x1D2C0, 0x1D2D3}, {0x1DF25, 0x1DF2A}, {0x1E030, 0x1E06D}, {0x1E08F, 0x1E08F},
    {0x1E4D0, 0x1E4F9}, {0x1F6DC, 0x1F6DC}, {0x1F774, 0x1F776}, {0x1F77B, 0x1F77F},
    {0x1F7D9, 0x1F7D9}, {0x1FA75, 0x1FA77}, {0x1FA87, 0x1FA88}, {0x1FAAD, 0x1FAAF},
    {0x1FABB, 0x1FABD}, {0x1FABF, 0x1FABF}, {0x1FACE, 0x1FACF}, {0x1FADA, 0x1FADB},
    {0x1FAE8, 0x1FAE8}, {0x1FAF7, 0x1FAF8}, {0x2B739, 0x2B739}, {0x31350, 0x323AF},
};

bool in_ranges(char32_t cp, const Range* begin, const Range* end) {
  const Range* it =
      std::upper_bound(begin, end, cp, [](char32_t c, const Range& r) { return c < r.lo; });
  return it != begin && cp <= (it - 1)->hi;
}

utf8proc_category_t category(char32_t cp) {
  if (cp > 0x10FFFF) return UTF8PROC_CATEGORY_CN;
  if (cp >= 0xD800 && cp <= 0xDFFF) return UTF8PROC_CATEGORY_CS;
  if (cp >= 0x0CF3 && is_unassigned_in_python(cp)) return UTF8PROC_CATEGORY_CN;
  return utf8proc_category(static_cast<utf8proc_int32_t>(cp));
}

char32_t simple_lower(char32_t cp) {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  return static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp)));
}

char32_t simple_upper(char32_t cp) {
  if (cp < 0x80) return (cp >= 'a' && cp <= 'z') ? cp - 32 : cp;
  return static_cast<char32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(cp)));
}

// Case_Ignorable (DerivedCoreProperties): Mn, Me, Cf, Lm, Sk, and the Word_Break
// classes MidLetter, MidNumLet and Single_Quote. Checked against CPython's table.
bool is_case_ignorable(char32_t cp) {
  switch (category(cp)) {
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_SK: return true;
    default: break;
  }
  switch (cp) {
    case 0x27:
    case 0x2E:
    case 0x3A:
    case 0xB7:
    case 0x387:
    case 0x55F:
    case 0x5F4:
    case 0x2018:
    case 0x2019:
    case 0x2024:
    case 0x2027:
    case 0xFE13:
    case 0xFE52:
    case 0xFE55:
    case 0xFF07:
    case 0xFF0E:
    case 0xFF1A: return true;
    default: return false;
  }
}

// Cased (DerivedCoreProperties): Lu, Ll, Lt, Other_Lowercase, Other_Uppercase.
// Other_* are the characters with a case mapping plus ª, º and the enclosed
// capital letters U+1F130..1F189. Checked against CPython's table for every code
// point that is not case-ignorable (the only ones Final_Sigma looks at).
bool is_cased(char32_t cp) {
  switch (category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT: return true;
    case UTF8PROC_CATEGORY_CN: return false;
    default: break;
  }
  if (cp == 0xAA || cp == 0xBA) return true;
  if ((cp >= 0x1F130 && cp <= 0x1F149) || (cp >= 0x1F150 && cp <= 0x1F169) ||
      (cp >= 0x1F170 && cp <= 0x1F189))
    return true;
  return simple_lower(cp) != cp || simple_upper(cp) != cp;
}

// CPython's handle_capital_sigma(): U+03A3 lowercases to final sigma U+03C2 when
// preceded by a cased letter and not followed by one, skipping case-ignorables.
char32_t lower_capital_sigma(std::u32string_view s, size_t i) {
  size_t j = i;
  bool final_sigma = false;
  while (j > 0) {
    --j;
    if (!is_case_ignorable(s[j])) {
      final_sigma = is_cased(s[j]);
      break;
    }
  }
  if (final_sigma) {
    for (size_t k = i + 1; k < s.size(); ++k) {
      if (!is_case_ignorable(s[k])) {
        final_sigma = !is_cased(s[k]);
        break;
      }
    }
  }
  return final_sigma ? 0x3C2 : 0x3C3;
}

struct FreeDeleter {
  void operator()(utf8proc_uint8_t* p) const { std::free(p); }
};

std::u32string utf8proc_normalize(std::u32string_view s, utf8proc_option_t options) {
  std::string in = encode_utf8(s);
  utf8proc_uint8_t* out = nullptr;
  utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(in.data()),
                                    static_cast<utf8proc_ssize_t>(in.size()), &out,
                                    static_cast<utf8proc_option_t>(options | UTF8PROC_STABLE));
  std::unique_ptr<utf8proc_uint8_t, FreeDeleter> guard(out);
  // The input is well-formed (it came from code points), so this only fails on
  // allocation failure: keep the text unnormalized rather than crash.
  if (n < 0 || out == nullptr) return std::u32string(s);
  return decode_utf8(std::string_view(reinterpret_cast<const char*>(out), static_cast<size_t>(n)));
}

bool all_below(std::u32string_view s, char32_t limit) {
  return std::all_of(s.begin(), s.end(), [limit](char32_t c) { return c < limit; });
}

}  // namespace

// ---------------------------------------------------------------------------
// UTF-8

std::u32string decode_utf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  size_t i = 0;
  while (i < s.size()) {
    if (p[i] < 0x80) {
      out.push_back(p[i]);
      ++i;
      continue;
    }
    utf8proc_int32_t cp = -1;
    utf8proc_ssize_t n = utf8proc_iterate(p + i, static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
    if (n <= 0 || cp < 0) {
      out.push_back(kReplacement);
      ++i;
    } else {
      out.push_back(static_cast<char32_t>(cp));
      i += static_cast<size_t>(n);
    }
  }
  return out;
}

std::string decode_utf8_replace(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char b = p[i];
    if (b < 0x80) {
      out.push_back(static_cast<char>(b));
      ++i;
      continue;
    }
    // The continuation bytes a lead byte needs, and the range of the first one
    // (E0, ED, F0 and F4 narrow it to exclude overlong forms, surrogates and
    // code points past U+10FFFF).
    size_t need = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
      need = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      need = 2;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      need = 3;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    }
    size_t j = i + 1;
    size_t got = 0;
    while (got < need && j < n) {
      const unsigned char c = p[j];
      if (got == 0 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) break;
      ++j;
      ++got;
    }
    if (need != 0 && got == need)
      out.append(s.substr(i, j - i));
    else
      append_utf8(out, kReplacement);
    i = j;
  }
  return out;
}

bool is_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  size_t i = 0;
  while (i < s.size()) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    utf8proc_int32_t cp = -1;
    utf8proc_ssize_t n = utf8proc_iterate(p + i, static_cast<utf8proc_ssize_t>(s.size() - i), &cp);
    if (n <= 0 || cp < 0) return false;
    i += static_cast<size_t>(n);
  }
  return true;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = kReplacement;
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp <= 0x10FFFF) {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    append_utf8(out, kReplacement);
  }
}

std::string encode_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

// ---------------------------------------------------------------------------
// Character properties

bool is_unassigned_in_python(char32_t cp) {
  return in_ranges(cp, std::begin(kAssignedAfterUnicode14), std::end(kAssignedAfterUnicode14));
}

bool is_other_category(char32_t cp) {
  switch (category(cp)) {
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO: return true;
    default: return false;
  }
}

bool is_letter(char32_t cp) {
  if (cp < 0x80) return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
  switch (category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: return true;
    default: return false;
  }
}

bool is_number(char32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  switch (category(cp)) {
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO: return true;
    default: return false;
  }
}

bool is_regex_letter(char32_t cp) {
  if (cp < 0x80) return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
  if (cp > 0x10FFFF) return false;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: return true;
    default: return false;
  }
}

bool is_regex_number(char32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  if (cp > 0x10FFFF) return false;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO: return true;
    default: return false;
  }
}

bool is_nonspacing_mark(char32_t cp) {
  return category(cp) == UTF8PROC_CATEGORY_MN;
}

bool is_python_space(char32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
  if (cp < 0x85) return false;
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool is_unicode_white_space(char32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  if (cp < 0x85) return false;
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool is_hf_whitespace(char32_t cp) {
  if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r') return true;
  if (cp < 0x80) return false;
  return category(cp) == UTF8PROC_CATEGORY_ZS;
}

bool is_hf_control(char32_t cp) {
  if (cp == '\t' || cp == '\n' || cp == '\r') return false;
  return is_other_category(cp);
}

bool is_hf_punctuation(char32_t cp) {
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
      (cp >= 123 && cp <= 126))
    return true;
  if (cp < 0x80) return false;
  switch (category(cp)) {
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO: return true;
    default: return false;
  }
}

bool is_cjk_ideograph(char32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

// ---------------------------------------------------------------------------
// String transforms

std::u32string nfc(std::u32string_view s) {
  // Below U+0300 every character is NFC and nothing composes with it.
  if (all_below(s, 0x300)) return std::u32string(s);
  return utf8proc_normalize(s, UTF8PROC_COMPOSE);
}

std::u32string nfd(std::u32string_view s) {
  if (all_below(s, 0xC0)) return std::u32string(s);
  return utf8proc_normalize(s, UTF8PROC_DECOMPOSE);
}

std::u32string python_lower(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char32_t c = s[i];
    if (c == 0x130) {  // SpecialCasing: LATIN CAPITAL LETTER I WITH DOT ABOVE -> i + U+0307
      out.push_back(U'i');
      out.push_back(0x307);
    } else if (c == 0x3A3) {
      out.push_back(lower_capital_sigma(s, i));
    } else {
      out.push_back(simple_lower(c));
    }
  }
  return out;
}

std::vector<std::u32string> python_split(std::u32string_view s) {
  std::vector<std::u32string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_python_space(s[i])) ++i;
    size_t start = i;
    while (i < s.size() && !is_python_space(s[i])) ++i;
    if (i > start) out.emplace_back(s.substr(start, i - start));
  }
  return out;
}

std::u32string_view python_lstrip(std::u32string_view s) {
  size_t i = 0;
  while (i < s.size() && is_python_space(s[i])) ++i;
  return s.substr(i);
}

std::u32string_view python_rstrip(std::u32string_view s) {
  size_t n = s.size();
  while (n > 0 && is_python_space(s[n - 1])) --n;
  return s.substr(0, n);
}

// ---------------------------------------------------------------------------
// BasicTokenizer

namespace {

std::u32string strip_accents(std::u32string_view s) {
  std::u32string decomposed = nfd(s);
  std::u32string out;
  out.reserve(decomposed.size());
  for (char32_t c : decomposed)
    if (!is_nonspacing_mark(c)) out.push_back(c);
  return out;
}

void split_on_punc(std::u32string_view word, std::vector<std::u32string>& out) {
  bool start_new_word = true;
  for (char32_t c : word) {
    if (is_hf_punctuation(c)) {
      out.emplace_back(1, c);
      start_new_word = true;
    } else {
      if (start_new_word) out.emplace_back();
      start_new_word = false;
      out.back().push_back(c);
    }
  }
}

}  // namespace

std::vector<std::u32string> basic_tokenize(std::u32string_view text,
                                           const BasicTokenizerOptions& options) {
  // _clean_text and _tokenize_chinese_chars in one pass.
  std::u32string cleaned;
  cleaned.reserve(text.size());
  for (char32_t c : text) {
    if (c == 0 || c == kReplacement || is_hf_control(c)) continue;
    if (is_hf_whitespace(c)) {
      cleaned.push_back(U' ');
    } else if (options.tokenize_chinese_chars && is_cjk_ideograph(c)) {
      cleaned.push_back(U' ');
      cleaned.push_back(c);
      cleaned.push_back(U' ');
    } else {
      cleaned.push_back(c);
    }
  }
  const std::u32string normalized = nfc(cleaned);
  const bool strip = options.strip_accents.value_or(options.lower_case);

  std::vector<std::u32string> split_tokens;
  for (std::u32string& word : python_split(normalized)) {
    const bool keep = std::find(options.never_split.begin(), options.never_split.end(), word) !=
                      options.never_split.end();
    if (!keep) {
      if (options.lower_case) {
        word = python_lower(word);
        if (strip) word = strip_accents(word);
      } else if (options.strip_accents.value_or(false)) {
        word = strip_accents(word);
      }
    }
    if (options.split_on_punc && !keep) {
      split_on_punc(word, split_tokens);
    } else {
      split_tokens.push_back(std::move(word));
    }
  }
  // whitespace_tokenize(" ".join(split_tokens))
  std::vector<std::u32string> out;
  out.reserve(split_tokens.size());
  for (const std::u32string& t : split_tokens) {
    if (t.empty()) continue;
    bool has_space = std::any_of(t.begin(), t.end(), is_python_space);
    if (!has_space) {
      out.push_back(t);
    } else {
      for (std::u32string& piece : python_split(t)) out.push_back(std::move(piece));
    }
  }
  return out;
}

std::vector<std::string> basic_tokenize(std::string_view text,
                                        const BasicTokenizerOptions& options) {
  std::vector<std::string> out;
  for (const std::u32string& w : basic_tokenize(decode_utf8(text), options))
    out.push_back(encode_utf8(w));
  return out;
}

std::vector<std::string> basic_tokenize(std::string_view text, bool lower_case,
                                        std::optional<bool> strip_accents_flag, bool split_punc,
                                        bool tokenize_chinese_chars) {
  BasicTokenizerOptions options;
  options.lower_case = lower_case;
  options.strip_accents = strip_accents_flag;
  options.split_on_punc = split_punc;
  options.tokenize_chinese_chars = tokenize_chinese_chars;
  return basic_tokenize(text, options);
}

// ---------------------------------------------------------------------------
// Added tokens

AddedTokenSplitter::AddedTokenSplitter(const std::vector<AddedToken>& tokens) : tokens_(tokens) {
  for (size_t t = 0; t < tokens_.size(); ++t) {
    std::u32string content = decode_utf8(tokens_[t].content);
    if (content.empty()) continue;  // Trie.add ignores empty words
    by_content_.emplace(content, static_cast<int>(t));
    int32_t node = 0;
    for (char32_t c : content) {
      auto it = nodes_[static_cast<size_t>(node)].next.find(c);
      if (it == nodes_[static_cast<size_t>(node)].next.end()) {
        nodes_.emplace_back();
        int32_t fresh = static_cast<int32_t>(nodes_.size() - 1);
        nodes_[static_cast<size_t>(node)].next.emplace(c, fresh);
        node = fresh;
      } else {
        node = it->second;
      }
    }
    if (nodes_[static_cast<size_t>(node)].token < 0)
      nodes_[static_cast<size_t>(node)].token = static_cast<int32_t>(t);
  }
}

// Same state machine as HF's Trie.split: partial matches are tracked per start
// position (in start order); when one of them is complete, the earliest start that
// can still complete is chosen and extended to its longest match. The lookahead of
// an earlier start that did not match the current character reuses its previous
// trie position, as HF does.
std::vector<std::u32string> AddedTokenSplitter::trie_split(std::u32string_view text) const {
  const size_t n = text.size();
  auto child = [this](int32_t node, char32_t c) -> int32_t {
    const auto& next = nodes_[static_cast<size_t>(node)].next;
    auto it = next.find(c);
    return it == next.end() ? -1 : it->second;
  };
  auto terminal = [this](int32_t node) { return nodes_[static_cast<size_t>(node)].token >= 0; };

  std::vector<std::pair<size_t, int32_t>> states;  // (start, trie node), ascending start
  std::vector<size_t> offsets{0};
  size_t skip = 0;
  for (size_t current = 0; current < n; ++current) {
    if (skip != 0 && current < skip) continue;
    const char32_t current_char = text[current];
    std::vector<bool> to_remove(states.size(), false);
    bool reset = false;
    for (size_t k = 0; k < states.size(); ++k) {
      size_t start = states[k].first;
      const int32_t pointer = states[k].second;
      if (terminal(pointer)) {
        size_t end = current;
        for (size_t m = 0; m < states.size(); ++m) {
          const size_t lookstart = states[m].first;
          int32_t look = states[m].second;
          size_t lookahead_index = 0;
          if (lookstart > start) {
            break;
          } else if (lookstart < start) {
            lookahead_index = current + 1;
            end = current + 1;
          } else {
            lookahead_index = current;
            end = current;
          }
          if (terminal(look)) {
            start = lookstart;
            end = lookahead_index;
            skip = lookahead_index;
          }
          while (lookahead_index < n) {
            const int32_t nxt = child(look, text[lookahead_index]);
            if (nxt < 0) break;
            look = nxt;
            ++lookahead_index;
            if (terminal(look)) {
              start = lookstart;
              end = lookahead_index;
              skip = lookahead_index;
            }
          }
        }
        offsets.push_back(start);
        offsets.push_back(end);
        reset = true;
        break;
      }
      const int32_t nxt = child(pointer, current_char);
      if (nxt >= 0) {
        states[k].second = nxt;
      } else {
        to_remove[k] = true;
      }
    }
    if (reset) {
      states.clear();
    } else {
      size_t w = 0;
      for (size_t k = 0; k < states.size(); ++k)
        if (!to_remove[k]) states[w++] = states[k];
      states.resize(w);
    }
    if (current >= skip) {
      const int32_t first = child(0, current_char);
      if (first >= 0) states.emplace_back(current, first);
    }
  }
  for (const auto& [start, pointer] : states) {
    if (terminal(pointer)) {
      offsets.push_back(start);
      offsets.push_back(n);
      break;
    }
  }
  // cut_text
  offsets.push_back(n);
  std::vector<std::u32string> pieces;
  size_t start = 0;
  for (size_t end : offsets) {
    if (start >= end) continue;
    pieces.emplace_back(text.substr(start, end - start));
    start = end;
  }
  return pieces;
}

std::vector<TextChunk> AddedTokenSplitter::split(std::u32string_view text) const {
  std::vector<TextChunk> chunks;
  if (empty()) {
    if (!text.empty()) chunks.push_back(TextChunk{std::u32string(text), -1});
    return chunks;
  }
  std::vector<std::u32string> tokens = trie_split(text);
  auto lookup = [this](const std::u32string& s) {
    auto it = by_content_.find(s);
    return it == by_content_.end() ? -1 : it->second;
  };
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int t = lookup(tokens[i]);
    if (t < 0) continue;
    const AddedToken& tok = tokens_[static_cast<size_t>(t)];
    // HF reads `left` / `right` before stripping them, then appends to the stripped ones.
    const std::u32string left = i > 0 ? tokens[i - 1] : std::u32string();
    const std::u32string right = i + 1 < tokens.size() ? tokens[i + 1] : std::u32string();
    if (tok.rstrip && !right.empty()) tokens[i + 1] = std::u32string(python_lstrip(right));
    if (tok.lstrip && !left.empty()) tokens[i - 1] = std::u32string(python_rstrip(left));
    if (tok.single_word && !left.empty() && left.back() != U' ') {
      tokens[i - 1] += tokens[i];
      tokens[i].clear();
    } else if (tok.single_word && !right.empty() && right.front() != U' ') {
      tokens[i + 1] = tokens[i] + tokens[i + 1];
      tokens[i].clear();
    }
  }
  for (std::u32string& token : tokens) {
    if (token.empty()) continue;
    const int t = lookup(token);
    chunks.push_back(TextChunk{std::move(token), t});
  }
  return chunks;
}

}  // namespace mmfuse::text
