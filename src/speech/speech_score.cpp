// Levenshtein alignment with a backtrace. Ties prefer a match/substitution,
// then a deletion, then an insertion, so that equal-cost alignments come out
// the same way every time.
#include "speech/speech_score.h"

#include <algorithm>
#include <cctype>

#include "text/ctc_vocabulary.h"

namespace mmfuse {

const char* to_string(WordStatus status) {
  switch (status) {
    case WordStatus::correct: return "correct";
    case WordStatus::substituted: return "substituted";
    case WordStatus::missing: return "missing";
    case WordStatus::extra: return "extra";
  }
  return "?";
}

std::vector<std::string> normalize_words(const std::string& text) {
  std::vector<std::string> words;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) words.push_back(cur);
    cur.clear();
  };
  for (const std::string& ch : utf8_chars(text)) {
    const unsigned char c = static_cast<unsigned char>(ch[0]);
    if (ch.size() == 1 && std::isspace(c)) {
      flush();
    } else if (ch.size() > 1 || std::isalnum(c) || c == '\'') {
      cur += ch.size() == 1 ? std::string(1, static_cast<char>(std::toupper(c))) : ch;
    }
  }
  flush();
  return words;
}

namespace {

// Edit operations aligning a to b: 0 match/sub, 1 deletion (a only), 2 insertion (b only).
template <typename T>
std::vector<std::pair<int, int>> levenshtein(const std::vector<T>& a, const std::vector<T>& b,
                                             size_t* edits) {
  const size_t n = a.size(), m = b.size();
  std::vector<size_t> d((n + 1) * (m + 1));
  auto at = [&](size_t i, size_t j) -> size_t& { return d[i * (m + 1) + j]; };
  for (size_t i = 0; i <= n; ++i) at(i, 0) = i;
  for (size_t j = 0; j <= m; ++j) at(0, j) = j;
  for (size_t i = 1; i <= n; ++i)
    for (size_t j = 1; j <= m; ++j)
      at(i, j) = std::min(
          {at(i - 1, j - 1) + (a[i - 1] == b[j - 1] ? 0 : 1), at(i - 1, j) + 1, at(i, j - 1) + 1});
  *edits = at(n, m);
  std::vector<std::pair<int, int>> path;  // (i, j) pairs, -1 for a gap
  size_t i = n, j = m;
  while (i > 0 || j > 0) {
    if (i > 0 && j > 0 && at(i, j) == at(i - 1, j - 1) + (a[i - 1] == b[j - 1] ? 0 : 1)) {
      path.emplace_back(static_cast<int>(i - 1), static_cast<int>(j - 1));
      --i;
      --j;
    } else if (i > 0 && at(i, j) == at(i - 1, j) + 1) {
      path.emplace_back(static_cast<int>(i - 1), -1);
      --i;
    } else {
      path.emplace_back(-1, static_cast<int>(j - 1));
      --j;
    }
  }
  std::reverse(path.begin(), path.end());
  return path;
}

std::vector<std::string> joined_chars(const std::vector<std::string>& words) {
  std::vector<std::string> out;
  for (size_t w = 0; w < words.size(); ++w) {
    if (w > 0) out.push_back(" ");
    for (const std::string& c : utf8_chars(words[w])) out.push_back(c);
  }
  return out;
}

}  // namespace

SpeechScore score_speech(const std::string& reference, const std::string& hypothesis) {
  return score_words(normalize_words(reference), normalize_words(hypothesis));
}

SpeechScore score_words(std::vector<std::string> reference, std::vector<std::string> hypothesis) {
  SpeechScore s;
  s.reference_words = std::move(reference);
  s.hypothesis_words = std::move(hypothesis);
  size_t edits = 0;
  for (const auto& [i, j] : levenshtein(s.reference_words, s.hypothesis_words, &edits)) {
    WordAlignment a;
    a.reference = i;
    a.hypothesis = j;
    if (i < 0) {
      a.status = WordStatus::extra;
      ++s.insertions;
    } else if (j < 0) {
      a.status = WordStatus::missing;
      ++s.deletions;
    } else if (s.reference_words[static_cast<size_t>(i)] ==
               s.hypothesis_words[static_cast<size_t>(j)]) {
      a.status = WordStatus::correct;
      ++s.correct;
    } else {
      a.status = WordStatus::substituted;
      ++s.substitutions;
    }
    s.alignment.push_back(a);
  }
  const double ref_words = static_cast<double>(std::max<size_t>(1, s.reference_words.size()));
  s.wer = static_cast<double>(edits) / ref_words;
  const std::vector<std::string> rc = joined_chars(s.reference_words),
                                 hc = joined_chars(s.hypothesis_words);
  levenshtein(rc, hc, &s.char_edits);
  s.reference_chars = rc.size();
  s.cer = static_cast<double>(s.char_edits) / static_cast<double>(std::max<size_t>(1, rc.size()));
  return s;
}

}  // namespace mmfuse
