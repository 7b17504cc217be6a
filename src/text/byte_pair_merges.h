// The parts of byte-level BPE that the CLIP and GPT-2 tokenizers share: GPT-2's
// bytes_to_unicode() table, and merging a word's symbols by merge rank exactly
// as their slow Hugging Face `bpe()` methods do.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace mmfuse::text {

// GPT-2 bytes_to_unicode(): printable Latin-1 bytes map to themselves, the
// others to U+0100 + n in byte order.
const std::array<char32_t, 256>& byte_to_unicode();
// The inverse: -1 for a code point no byte maps to.
int byte_of_unicode(char32_t cp);

// Symbols (the strings a BPE word is made of) interned to small ids, and the
// merge table. Built once at load, then only read: const use is thread-safe.
class BpeMerges {
 public:
  // Room for `merges` merges (and their symbols) without rehashing.
  void reserve(size_t merges);
  // The id of a symbol, added when new.
  int32_t intern(const std::string& symbol);
  // -1 when the symbol was never interned.
  int32_t find(const std::string& symbol) const;
  const std::string& symbol(int32_t id) const { return symbols_[static_cast<size_t>(id)]; }
  size_t symbol_count() const { return symbols_.size(); }

  // Merging `first` + `second` has `rank` (lower merges first). A pair given
  // again takes the new rank, as dict(zip(merges, range(...))) does.
  void add(const std::string& first, const std::string& second, int32_t rank);

  // bpe(word): while some adjacent pair has a rank, take the pair of lowest
  // rank and merge all its occurrences left to right without overlap (the
  // occurrences in the word as it was before this round). O(n log n) with a
  // heap instead of the reference's rescans, same result.
  void merge(std::vector<int32_t>& word) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t merged;
  };
  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  const Merge* lookup(int32_t a, int32_t b) const;

  std::unordered_map<std::string, int32_t> ids_;
  std::vector<std::string> symbols_;
  std::unordered_map<uint64_t, Merge> merges_;
};

}  // namespace mmfuse::text
