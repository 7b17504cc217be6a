// Viterbi over the CTC trellis of the extended label sequence
// (blank, l1, blank, l2, ..., blank): a state may stay, advance by one, or skip
// a blank between two different labels. Back-pointers are kept per frame as
// one byte per state, so memory is frames * (2L + 1) bytes.
#include "speech/forced_align.h"

#include <cmath>
#include <limits>

#include "mmfuse/error.h"

namespace mmfuse {

std::vector<AlignedLabel> ctc_forced_align(const float* log_probs, size_t frames, size_t vocab,
                                           const std::vector<int>& labels, int blank) {
  const size_t L = labels.size();
  if (L == 0) return {};
  size_t needed = L;
  for (size_t i = 1; i < L; ++i) needed += labels[i] == labels[i - 1] ? 1 : 0;
  MMFUSE_CHECK(needed <= frames, bad_input,
               "the transcript needs at least " + std::to_string(needed) +
                   " frames but the audio has " + std::to_string(frames) + " (" +
                   std::to_string(L) + " characters are too many for it)");
  const size_t S = 2 * L + 1;
  MMFUSE_CHECK(frames * S <= (size_t{1} << 32), bad_input,
               "the transcript is too long to align against this audio in one piece");
  for (int l : labels) MMFUSE_ASSERT(l >= 0 && static_cast<size_t>(l) < vocab && l != blank);
  auto state_label = [&](size_t s) { return s % 2 == 0 ? blank : labels[s / 2]; };
  constexpr float kNeg = -std::numeric_limits<float>::infinity();
  std::vector<float> prev(S, kNeg), cur(S, kNeg);
  std::vector<uint8_t> back(frames * S, 0);  // 0 stay, 1 from s-1, 2 from s-2
  prev[0] = log_probs[blank];
  prev[1] = log_probs[labels[0]];
  for (size_t t = 1; t < frames; ++t) {
    const float* lp = log_probs + t * vocab;
    uint8_t* bt = back.data() + t * S;
    // States that cannot reach the end in time, or be reached by now, stay -inf.
    for (size_t s = 0; s < S; ++s) {
      float best = prev[s];
      uint8_t from = 0;
      if (s >= 1 && prev[s - 1] > best) {
        best = prev[s - 1];
        from = 1;
      }
      if (s >= 2 && s % 2 == 1 && labels[s / 2] != labels[s / 2 - 1] && prev[s - 2] > best) {
        best = prev[s - 2];
        from = 2;
      }
      cur[s] = best == kNeg ? kNeg : best + lp[state_label(s)];
      bt[s] = from;
    }
    prev.swap(cur);
  }
  // End in the last label or the trailing blank.
  size_t s = prev[S - 1] >= prev[S - 2] ? S - 1 : S - 2;
  MMFUSE_CHECK(prev[s] > kNeg, bad_input, "no CTC path fits the transcript to the audio");
  std::vector<size_t> path(frames);
  for (size_t t = frames; t-- > 0;) {
    path[t] = s;
    if (t > 0) s -= back[t * S + s];
  }
  MMFUSE_ASSERT(path[0] <= 1);
  std::vector<AlignedLabel> out(L);
  std::vector<size_t> count(L, 0);
  for (size_t i = 0; i < L; ++i) out[i].label = labels[i];
  std::vector<bool> seen(L, false);
  for (size_t t = 0; t < frames; ++t) {
    if (path[t] % 2 == 0) continue;
    const size_t i = path[t] / 2;
    if (!seen[i]) out[i].start = t;
    seen[i] = true;
    out[i].end = t + 1;
    out[i].score += log_probs[t * vocab + static_cast<size_t>(labels[i])];
    ++count[i];
  }
  for (size_t i = 0; i < L; ++i) {
    MMFUSE_ASSERT(seen[i]);
    out[i].score /= static_cast<float>(count[i]);
  }
  return out;
}

AlignedTranscript aligned_spans(const std::vector<AlignedLabel>& aligned,
                                const CtcVocabulary& vocab,
                                const std::vector<std::pair<size_t, size_t>>& word_spans,
                                const std::vector<std::string>& words) {
  AlignedTranscript out;
  for (const AlignedLabel& a : aligned)
    out.chars.push_back({a.label == vocab.delimiter_id() ? std::string(" ") : vocab.token(a.label),
                         a.start, a.end});
  for (size_t w = 0; w < word_spans.size(); ++w) {
    const auto [first, last] = word_spans[w];
    MMFUSE_ASSERT(first < last && last <= aligned.size());
    CtcSpan span;
    if (w < words.size()) {
      span.text = words[w];
    } else {
      for (size_t i = first; i < last; ++i) span.text += out.chars[i].text;
    }
    span.start = aligned[first].start;
    span.end = aligned[last - 1].end;
    float score = 0;
    for (size_t i = first; i < last; ++i) score += aligned[i].score;
    out.words.push_back(span);
    out.word_scores.push_back(score / static_cast<float>(last - first));
  }
  return out;
}

std::vector<std::pair<size_t, size_t>> label_word_ranges(const std::vector<int>& labels,
                                                         int delimiter) {
  std::vector<std::pair<size_t, size_t>> ranges;
  size_t start = 0;
  for (size_t i = 0; i <= labels.size(); ++i) {
    if (i == labels.size() || labels[i] == delimiter) {
      if (i > start) ranges.emplace_back(start, i);
      start = i + 1;
    }
  }
  return ranges;
}

}  // namespace mmfuse
