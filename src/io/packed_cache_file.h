// The file format of the packed-weight cache (io/packed_weight_cache.h): the
// oneDNN-packed weights of a model's linear layers, written once and mapped
// read-only by later loads.
//
//   bytes 0-7    "MMFPACK1"
//   bytes 8-15   index length N (little-endian u64)
//   bytes 16-23  hash64 of the index
//   bytes 24..   the index: JSON {"key": the cache key text, "layers": [{"name",
//                "precision", "in", "out", "slices": [[offset, bytes], ...],
//                "scale": offset, "sums": offset, "hash": hex of hash64 over
//                the layer's slices, scales and sums in that order}]}
//   payload      from the next multiple of 4096; every blob starts at a
//                multiple of 64 (offsets are from the start of the file)
//
// Checksums are per layer, so a loader verifies a layer as it takes it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "core/packed_gemm.h"
#include "core/precision.h"

namespace mmfuse {

// XXH3 (libxxhash, its run-time dispatched SIMD kernel), 64 bits: detects
// corrupted or truncated cache files near memory speed.
uint64_t hash64(const void* data, size_t size);

struct PackedCacheLayer {
  std::string name;
  Precision precision = Precision::f32;
  int in = 0;
  int out = 0;
  std::vector<std::pair<uint64_t, uint64_t>> slices;  // [offset, bytes]
  uint64_t scale = 0;  // int8: offset of `out` floats
  uint64_t sums = 0;   // int8: offset of `out` int32s
  uint64_t hash = 0;
};

struct PackedCacheIndex {
  std::string key;
  std::vector<PackedCacheLayer> layers;
};

// Parses the index of a cache file held in `bytes`: magic, index checksum,
// JSON fields, every blob inside the file and aligned for its type. Throws
// Error(bad_input) naming `name` on any defect (never reads out of bounds).
PackedCacheIndex parse_packed_cache(const uint8_t* bytes, size_t size, const std::string& name);

// True when the layer's blobs in `file` (the whole cache file) still hash to
// layer.hash. The layer must come from parse_packed_cache of the same bytes.
bool packed_layer_intact(const uint8_t* file, const PackedCacheLayer& layer);

// Writes `layers` with `key` as a cache file at `path`: to a temporary file in
// the same folder, then renamed over `path`, so a concurrent reader sees the
// old file or the new one, never a partial one. Throws Error(internal) naming
// the file when it cannot (read-only folder, disk full); the temporary file
// is removed then.
void write_packed_cache(const std::filesystem::path& path, const std::string& key,
                        const std::vector<std::pair<std::string, const PackedLinear*>>& layers);

}  // namespace mmfuse
