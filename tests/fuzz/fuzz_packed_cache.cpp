// Fuzzes the packed-weight cache file's index validation and layer checksums
// (a cache file on disk may be corrupt, truncated or written by anyone). Every
// input is tried as it is and with its index checksum set right, so mutations
// of the index JSON get past the checksum to the field and offset checks.
#include <cstdint>
#include <vector>

#include "io/packed_cache_file.h"
#include "mmfuse/error.h"

namespace {

void parse(const std::vector<uint8_t>& bytes) {
  try {
    mmfuse::PackedCacheIndex index = mmfuse::parse_packed_cache(bytes.data(), bytes.size(), "fuzz");
    for (const auto& layer : index.layers) (void)mmfuse::packed_layer_intact(bytes.data(), layer);
  } catch (const mmfuse::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  parse(bytes);
  if (size >= 24) {
    uint64_t n = 0;
    for (int i = 15; i >= 8; --i) n = n << 8 | bytes[static_cast<size_t>(i)];
    if (n <= size - 24) {
      const uint64_t h = mmfuse::hash64(bytes.data() + 24, n);
      for (int i = 0; i < 8; ++i) bytes[static_cast<size_t>(16 + i)] = static_cast<uint8_t>(h >> (8 * i));
      parse(bytes);
    }
  }
  return 0;
}
