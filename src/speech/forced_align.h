// CTC forced alignment: the single best path (Viterbi) through the CTC lattice
// of a known label sequence, giving each label the frames it occupies. Used to
// time a given transcript (subtitle re-timing, scoring) and to time the
// labels a beam search chose.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "speech/ctc_decode.h"
#include "text/ctc_vocabulary.h"

namespace mmfuse {

struct AlignedLabel {
  int label = 0;
  size_t start = 0;  // first frame on the label
  size_t end = 0;    // one past its last frame
  float score = 0;   // mean log-probability of the label over its frames
};

// log_probs: [frames, vocab] log-softmax rows; labels: the target (no blanks).
// Throws bad_input if the labels cannot fit in the frames (each label needs a
// frame, and a repeated label a blank between).
std::vector<AlignedLabel> ctc_forced_align(const float* log_probs, size_t frames, size_t vocab,
                                           const std::vector<int>& labels, int blank);

// Per-character and per-word spans of a label sequence from its alignment.
// Characters are the labels (delimiter as " "); words follow `word_spans`
// (label index ranges) and carry `words` as their text when given, else the
// characters of the span.
struct AlignedTranscript {
  std::vector<CtcSpan> chars;
  std::vector<CtcSpan> words;
  std::vector<float> word_scores;  // mean log-probability per word
};
AlignedTranscript aligned_spans(const std::vector<AlignedLabel>& aligned,
                                const CtcVocabulary& vocab,
                                const std::vector<std::pair<size_t, size_t>>& word_spans,
                                const std::vector<std::string>& words);

// Word ranges of a label sequence split at the delimiter (for beam-search output).
std::vector<std::pair<size_t, size_t>> label_word_ranges(const std::vector<int>& labels,
                                                         int delimiter);

}  // namespace mmfuse
