// CTC decoding of per-frame logits: greedy (argmax, collapse repeats, drop the
// blank, word delimiter -> space: exactly HF Wav2Vec2CTCTokenizer.decode with
// char/word offsets) and prefix beam search. Offsets are in frames; one frame
// is inputs_to_logits_ratio samples (20 ms for wav2vec2 at 16 kHz).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "text/ctc_vocabulary.h"

namespace mmfuse {

// A character or word and the frames [start, end) it was emitted on.
struct CtcSpan {
  std::string text;
  size_t start = 0;
  size_t end = 0;
};

struct CtcTranscript {
  std::string text;            // HF's decode(ids): stripped, two delimiters give two spaces
  std::vector<int> labels;     // the label sequence (no blanks), as emitted
  std::vector<CtcSpan> chars;  // one per label; the delimiter appears as " "
  std::vector<CtcSpan> words;  // HF _get_word_offsets over `chars`
};

// Per-frame argmax of logits [frames, vocab] (first maximum on ties, as torch).
std::vector<int> ctc_argmax(const float* logits, size_t frames, size_t vocab);

// Greedy decoding of per-frame ids (HF tok.decode(ids, output_char_offsets=True,
// output_word_offsets=True), skip_special_tokens=False).
CtcTranscript ctc_greedy_decode(const std::vector<int>& frame_ids, const CtcVocabulary& vocab);

// The text HF's tokenizer gives for a label sequence (delimiter -> space,
// stripped, lower-cased and cleaned up as the tokenizer config says).
std::string ctc_labels_text(const std::vector<int>& labels, const CtcVocabulary& vocab);

// Words and their frame spans from per-character spans (HF _get_word_offsets).
std::vector<CtcSpan> ctc_word_spans(const std::vector<CtcSpan>& chars);

// In-place log-softmax over each row of logits [frames, vocab].
void log_softmax_rows(float* x, size_t frames, size_t vocab);

// CTC prefix beam search over log-probabilities [frames, vocab]; returns the
// best label sequence (no blanks). beam_width >= 1; tokens whose log-prob is
// below `token_floor` in a frame are not extended (except the best one).
std::vector<int> ctc_prefix_beam_search(const float* log_probs, size_t frames, size_t vocab,
                                        int blank, int beam_width, float token_floor = -12.0f);

}  // namespace mmfuse
