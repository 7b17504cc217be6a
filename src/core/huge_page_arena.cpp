#include "core/huge_page_arena.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "mmfuse/error.h"

namespace mmfuse {

namespace {
constexpr size_t kHugePage = size_t{2} << 20;
// Chunks of 64 MiB: at most one partly used chunk per arena.
constexpr size_t kChunk = size_t{64} << 20;
}  // namespace

HugePageArena::~HugePageArena() {
  for (const Chunk& c : chunks_) munmap(c.data, c.size);
}

uint8_t* HugePageArena::allocate(size_t bytes) {
  bytes = (bytes + 63) / 64 * 64;
  if (chunks_.empty() || chunks_.back().size - chunks_.back().used < bytes) {
    const size_t size = bytes > kChunk ? (bytes + kHugePage - 1) / kHugePage * kHugePage : kChunk;
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
      throw_error(ErrorKind::internal, "cannot map " + std::to_string(size >> 20) +
                                           " MiB for quantised weights: " + std::strerror(errno));
    madvise(p, size, MADV_HUGEPAGE);
    chunks_.push_back({static_cast<uint8_t*>(p), size, 0});
  }
  Chunk& c = chunks_.back();
  uint8_t* out = c.data + c.used;
  c.used += bytes;
  used_total_ += bytes;
  return out;
}

}  // namespace mmfuse
