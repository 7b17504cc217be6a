// Bump allocation of long-lived read-mostly buffers (quantised decoder
// weights) from anonymous mappings backed by transparent huge pages where the
// kernel offers them: decoding streams every weight for every token, and 4 KiB
// pages cost TLB misses (~12 % of the bandwidth, see io/safetensors.h). The
// memory is released when the arena is destroyed. Not thread-safe: one loader
// fills it, then it is only read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mmfuse {

class HugePageArena {
 public:
  HugePageArena() = default;
  ~HugePageArena();
  HugePageArena(const HugePageArena&) = delete;
  HugePageArena& operator=(const HugePageArena&) = delete;

  // `bytes` bytes aligned to 64, zero-filled; throws mmfuse::Error (internal)
  // when the system has no memory left.
  uint8_t* allocate(size_t bytes);
  size_t bytes_used() const { return used_total_; }

 private:
  struct Chunk {
    uint8_t* data = nullptr;
    size_t size = 0, used = 0;
  };
  std::vector<Chunk> chunks_;
  size_t used_total_ = 0;
};

}  // namespace mmfuse
