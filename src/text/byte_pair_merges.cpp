// Byte-level BPE pieces shared by the CLIP and GPT-2 tokenizers (see byte_pair_merges.h).
#include "text/byte_pair_merges.h"

#include <algorithm>
#include <queue>

namespace mmfuse::text {

namespace {

std::array<char32_t, 256> make_byte_to_unicode() {
  std::array<char32_t, 256> table{};
  char32_t n = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    table[static_cast<size_t>(b)] = printable ? static_cast<char32_t>(b) : 0x100 + n++;
  }
  return table;
}

}  // namespace

const std::array<char32_t, 256>& byte_to_unicode() {
  static const std::array<char32_t, 256> table = make_byte_to_unicode();
  return table;
}

int byte_of_unicode(char32_t cp) {
  // The table maps bytes to U+0021..U+0143; printable bytes to themselves.
  if (cp > 0x143) return -1;
  static const std::array<int16_t, 0x144> inverse = [] {
    std::array<int16_t, 0x144> inv{};
    inv.fill(-1);
    const auto& table = byte_to_unicode();
    for (int b = 0; b < 256; ++b) inv[table[static_cast<size_t>(b)]] = static_cast<int16_t>(b);
    return inv;
  }();
  return inverse[cp];
}

void BpeMerges::reserve(size_t merges) {
  // A merge usually adds one new symbol (its halves were made by earlier ones).
  ids_.reserve(merges + 512);
  symbols_.reserve(merges + 512);
  merges_.reserve(merges);
}

int32_t BpeMerges::intern(const std::string& symbol) {
  // find() first: emplace() would build (allocate) a node for every call.
  if (auto it = ids_.find(symbol); it != ids_.end()) return it->second;
  const auto id = static_cast<int32_t>(symbols_.size());
  ids_.emplace(symbol, id);
  symbols_.push_back(symbol);
  return id;
}

int32_t BpeMerges::find(const std::string& symbol) const {
  auto it = ids_.find(symbol);
  return it == ids_.end() ? -1 : it->second;
}

void BpeMerges::add(const std::string& first, const std::string& second, int32_t rank) {
  // An empty half never occurs in a word (and would let a merge reproduce one
  // of its halves, which merge() relies on not happening).
  if (first.empty() || second.empty()) return;
  const int32_t a = intern(first);
  const int32_t b = intern(second);
  std::string joined;
  joined.reserve(first.size() + second.size());
  joined.append(first).append(second);
  const int32_t merged = intern(joined);
  merges_.insert_or_assign(key(a, b), Merge{rank, merged});
}

const BpeMerges::Merge* BpeMerges::lookup(int32_t a, int32_t b) const {
  auto it = merges_.find(key(a, b));
  return it == merges_.end() ? nullptr : &it->second;
}

// The reference rescans the word for its lowest-ranked pair after every round.
// Here every adjacent pair with a rank sits in a heap keyed (rank, position);
// a round pops all entries of the lowest rank first, then merges those still
// valid in position order. That is the same set of merges: a merge makes a
// symbol longer than both halves, so it never creates another occurrence of
// the round's pair, and a position whose nodes were consumed by the merge to
// its left fails the validity check (the leftmost-first, no-overlap rule).
// Pairs a merge creates wait for later rounds even when their rank is lower.
void BpeMerges::merge(std::vector<int32_t>& word) const {
  const size_t n = word.size();
  if (n < 2 || merges_.empty()) return;
  struct Entry {
    int32_t rank;
    int32_t pos;  // the left node
    int32_t left, right;
    bool operator>(const Entry& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::vector<int32_t> next(n), prev(n);
  std::vector<char> alive(n, 1);
  for (size_t i = 0; i < n; ++i) {
    next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
    prev[i] = static_cast<int32_t>(i) - 1;
  }
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
  auto push = [&](int32_t pos) {
    if (pos < 0) return;
    const int32_t nx = next[static_cast<size_t>(pos)];
    if (nx < 0) return;
    const int32_t a = word[static_cast<size_t>(pos)], b = word[static_cast<size_t>(nx)];
    if (const Merge* m = lookup(a, b)) heap.push(Entry{m->rank, pos, a, b});
  };
  for (size_t i = 0; i + 1 < n; ++i) push(static_cast<int32_t>(i));

  std::vector<Entry> round;
  while (!heap.empty()) {
    const int32_t rank = heap.top().rank;
    round.clear();
    while (!heap.empty() && heap.top().rank == rank) {
      round.push_back(heap.top());
      heap.pop();
    }
    for (const Entry& e : round) {
      const auto p = static_cast<size_t>(e.pos);
      if (!alive[p]) continue;
      const int32_t nx = next[p];
      if (nx < 0 || word[p] != e.left || word[static_cast<size_t>(nx)] != e.right) continue;
      word[p] = lookup(e.left, e.right)->merged;
      alive[static_cast<size_t>(nx)] = 0;
      next[p] = next[static_cast<size_t>(nx)];
      if (next[p] >= 0) prev[static_cast<size_t>(next[p])] = e.pos;
      push(prev[p]);
      push(e.pos);
    }
  }
  size_t out = 0;
  for (int32_t i = 0; i >= 0; i = next[static_cast<size_t>(i)])
    word[out++] = word[static_cast<size_t>(i)];
  word.resize(out);
}

}  // namespace mmfuse::text
