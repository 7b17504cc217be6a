// Fuzzes the packed-weight cache file's index validation and layer checksums
// (a cache file on disk may be corrupt, truncated or written by anyone).
#include <cstdint>

#include "io/packed_cache_file.h"
#include "mmfuse/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    mmfuse::PackedCacheIndex index = mmfuse::parse_packed_cache(data, size, "fuzz");
    for (const auto& layer : index.layers) (void)mmfuse::packed_layer_intact(data, layer);
  } catch (const mmfuse::Error&) {
  }
  return 0;
}
