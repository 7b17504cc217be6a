// Greedy CTC decoding with HF-identical offsets, and a prefix beam search whose
// prefixes live in a trie (a prefix is one node id, so extending costs O(1)).
#include "speech/ctc_decode.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "core/strings.h"
#include "mmfuse/error.h"

namespace mmfuse {

namespace {

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
}

// PreTrainedTokenizerBase.clean_up_tokenization (transformers 4.44).
std::string clean_up_tokenization(std::string s) {
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{{" .", "."},
                                                                                 {" ?", "?"},
                                                                                 {" !", "!"},
                                                                                 {" ,", ","},
                                                                                 {" ' ", "'"},
                                                                                 {" n't", "n't"},
                                                                                 {" 'm", "'m"},
                                                                                 {" 's", "'s"},
                                                                                 {" 've", "'ve"},
                                                                                 {" 're", "'re"}})
    replace_all(s, from, to);
  return s;
}

std::string strip(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::string char_text(int id, const CtcVocabulary& vocab) {
  return id == vocab.delimiter_id() ? std::string(" ") : vocab.token(id);
}

std::string finish_text(const std::string& joined, const CtcVocabulary& vocab) {
  std::string text = strip(joined);
  if (vocab.do_lower_case()) text = ascii_lower(std::move(text));
  if (vocab.clean_up_tokenization_spaces()) text = clean_up_tokenization(text);
  return text;
}

float log_add(float a, float b) {
  if (a == -std::numeric_limits<float>::infinity()) return b;
  if (b == -std::numeric_limits<float>::infinity()) return a;
  const float m = std::max(a, b);
  return m + std::log1p(std::exp(-std::fabs(a - b)));
}

}  // namespace

std::vector<int> ctc_argmax(const float* logits, size_t frames, size_t vocab) {
  std::vector<int> ids(frames);
  for (size_t t = 0; t < frames; ++t) {
    const float* row = logits + t * vocab;
    ids[t] = static_cast<int>(std::max_element(row, row + vocab) - row);
  }
  return ids;
}

std::string ctc_labels_text(const std::vector<int>& labels, const CtcVocabulary& vocab) {
  std::string joined;
  for (int id : labels) joined += char_text(id, vocab);
  return finish_text(joined, vocab);
}

std::vector<CtcSpan> ctc_word_spans(const std::vector<CtcSpan>& chars) {
  std::vector<CtcSpan> words;
  bool in_word = false;
  CtcSpan cur;
  for (const CtcSpan& c : chars) {
    const bool space = c.text == " ";
    if (space) {
      if (in_word) words.push_back(cur);
      in_word = false;
    } else if (in_word) {
      cur.text += c.text;
      cur.end = c.end;
    } else {
      cur = c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(cur);
  return words;
}

CtcTranscript ctc_greedy_decode(const std::vector<int>& frame_ids, const CtcVocabulary& vocab) {
  CtcTranscript out;
  std::string joined;
  for (size_t t = 0; t < frame_ids.size();) {
    size_t e = t + 1;
    while (e < frame_ids.size() && frame_ids[e] == frame_ids[t]) ++e;
    const int id = frame_ids[t];
    MMFUSE_ASSERT(id >= 0 && static_cast<size_t>(id) < vocab.size());
    if (id != vocab.blank_id()) {
      out.labels.push_back(id);
      out.chars.push_back({char_text(id, vocab), t, e});
      joined += char_text(id, vocab);
    }
    t = e;
  }
  out.text = finish_text(joined, vocab);
  out.words = ctc_word_spans(out.chars);
  return out;
}

void log_softmax_rows(float* x, size_t frames, size_t vocab) {
  for (size_t t = 0; t < frames; ++t) {
    float* row = x + t * vocab;
    const float m = *std::max_element(row, row + vocab);
    double sum = 0.0;
    for (size_t v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(row[v] - m));
    const float lse = m + static_cast<float>(std::log(sum));
    for (size_t v = 0; v < vocab; ++v) row[v] -= lse;
  }
}

std::vector<int> ctc_prefix_beam_search(const float* log_probs, size_t frames, size_t vocab,
                                        int blank, int beam_width, float token_floor) {
  MMFUSE_CHECK(beam_width >= 1, bad_input, "beam width must be at least 1");
  constexpr float kNeg = -std::numeric_limits<float>::infinity();
  constexpr size_t kMaxNodes = size_t{1} << 20;
  // Trie of prefixes: node 0 is the empty prefix.
  struct Node {
    int parent;
    int token;
  };
  std::vector<Node> nodes{{-1, -1}};
  std::unordered_map<uint64_t, int> children;
  auto child = [&](int node, int token) {
    const uint64_t key = static_cast<uint64_t>(node) * vocab + static_cast<uint64_t>(token);
    auto it = children.find(key);
    if (it != children.end()) return it->second;
    nodes.push_back({node, token});
    const int id = static_cast<int>(nodes.size() - 1);
    children.emplace(key, id);
    return id;
  };
  struct Score {
    float blank = kNeg, non_blank = kNeg;
    float total() const { return log_add(blank, non_blank); }
  };
  std::vector<std::pair<int, Score>> beams{{0, Score{0.0f, kNeg}}};
  std::unordered_map<int, Score> next;
  std::vector<int> candidates;
  for (size_t t = 0; t < frames; ++t) {
    const float* lp = log_probs + t * vocab;
    candidates.clear();
    const int best = static_cast<int>(std::max_element(lp, lp + vocab) - lp);
    for (size_t v = 0; v < vocab; ++v)
      if (static_cast<int>(v) != blank && (lp[v] >= token_floor || static_cast<int>(v) == best))
        candidates.push_back(static_cast<int>(v));
    // At most beam_width extensions per frame: the likeliest labels.
    if (candidates.size() > static_cast<size_t>(beam_width)) {
      std::partial_sort(candidates.begin(), candidates.begin() + beam_width, candidates.end(),
                        [&](int a, int b) { return lp[a] != lp[b] ? lp[a] > lp[b] : a < b; });
      candidates.resize(static_cast<size_t>(beam_width));
    }
    next.clear();
    for (const auto& [node, s] : beams) {
      const float total = s.total();
      // Blank: the prefix stays, now ending in a blank.
      Score& same = next[node];
      same.blank = log_add(same.blank, total + lp[blank]);
      const int last = nodes[static_cast<size_t>(node)].token;
      if (last >= 0) {
        // Repeat of the last label without a blank between: collapses into it.
        same.non_blank = log_add(same.non_blank, s.non_blank + lp[last]);
      }
      for (int v : candidates) {
        const int ext = child(node, v);
        Score& e = next[ext];
        // A repeated label needs a blank in between to count twice.
        const float from = v == last ? s.blank : total;
        e.non_blank = log_add(e.non_blank, from + lp[v]);
      }
    }
    beams.assign(next.begin(), next.end());
    const size_t keep = std::min(beams.size(), static_cast<size_t>(beam_width));
    std::partial_sort(beams.begin(), beams.begin() + static_cast<long>(keep), beams.end(),
                      [](const auto& a, const auto& b) {
                        const float ta = a.second.total(), tb = b.second.total();
                        return ta != tb ? ta > tb : a.first < b.first;
                      });
    beams.resize(keep);
    if (nodes.size() > kMaxNodes) {
      // Keep only the live prefixes (the beams and their ancestors), renumbered;
      // the children map is rebuilt so equal prefixes still share one node.
      std::vector<int> remap(nodes.size(), -1);
      remap[0] = 0;
      std::vector<Node> kept{{-1, -1}};
      std::vector<int> chain;
      auto live = [&](int node) {
        chain.clear();
        for (int n = node; remap[static_cast<size_t>(n)] < 0;
             n = nodes[static_cast<size_t>(n)].parent)
          chain.push_back(n);
        for (size_t i = chain.size(); i-- > 0;) {
          const Node& old = nodes[static_cast<size_t>(chain[i])];
          kept.push_back({remap[static_cast<size_t>(old.parent)], old.token});
          remap[static_cast<size_t>(chain[i])] = static_cast<int>(kept.size() - 1);
        }
        return remap[static_cast<size_t>(node)];
      };
      for (auto& b : beams) b.first = live(b.first);
      nodes.swap(kept);
      children.clear();
      for (size_t i = 1; i < nodes.size(); ++i)
        children.emplace(
            static_cast<uint64_t>(nodes[i].parent) * vocab + static_cast<uint64_t>(nodes[i].token),
            static_cast<int>(i));
    }
  }
  std::vector<int> labels;
  for (int node = beams.front().first; node > 0; node = nodes[static_cast<size_t>(node)].parent)
    labels.push_back(nodes[static_cast<size_t>(node)].token);
  std::reverse(labels.begin(), labels.end());
  return labels;
}

}  // namespace mmfuse
