// Scoring a spoken reading against its reference text (chapter 4.3): word and
// character error rates from a Levenshtein alignment, and the word-by-word
// alignment marking each word correct, substituted, missing or extra.
#pragma once

#include <string>
#include <vector>

namespace mmfuse {

enum class WordStatus { correct, substituted, missing, extra };
const char* to_string(WordStatus status);

struct WordAlignment {
  WordStatus status = WordStatus::correct;
  int reference = -1;   // index into the reference words, -1 for extra
  int hypothesis = -1;  // index into the hypothesis words, -1 for missing
};

struct SpeechScore {
  std::vector<std::string> reference_words;   // normalised
  std::vector<std::string> hypothesis_words;  // normalised
  std::vector<WordAlignment> alignment;       // in reading order
  size_t substitutions = 0, deletions = 0, insertions = 0, correct = 0;
  double wer = 0;  // (S + D + I) / reference words
  size_t char_edits = 0, reference_chars = 0;
  double cer = 0;  // character edits / reference characters (words joined by one space)
};

// Upper-cases ASCII letters and keeps letters, digits, apostrophes and any
// non-ASCII characters of each whitespace-separated word; words left empty vanish.
std::vector<std::string> normalize_words(const std::string& text);

// Scores `hypothesis` against `reference`. An empty reference gives wer = cer
// = 0 when the hypothesis is empty too, else 1 per inserted word/character
// relative to one (so the rate is the count).
SpeechScore score_speech(const std::string& reference, const std::string& hypothesis);
// The same on words already normalised (normalize_words), e.g. to keep the
// hypothesis words in step with their timestamps.
SpeechScore score_words(std::vector<std::string> reference, std::vector<std::string> hypothesis);

}  // namespace mmfuse
