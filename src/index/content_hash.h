// Content hashes (hex SHA-256) that key the catalogue and the embedding cache,
// and the fingerprint that identifies a model folder's weights.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "io/digest.h"

namespace mmfuse {

// sha256_hex(data, size) is in io/digest.h.
inline std::string sha256_hex(const std::vector<uint8_t>& bytes) {
  return sha256_hex(bytes.data(), bytes.size());
}
// Texts are hashed with a prefix so a text never shares a key with a file of the same bytes.
std::string text_hash(const std::string& text);

// Reads a whole file; throws Error(not_found / bad_input) naming it.
std::vector<uint8_t> read_file_bytes(const std::filesystem::path& path);

// Identifies a model folder's weights without reading all of them: SHA-256 over
// every file's name and size, the whole of small files (config, tokenizer) and
// 64 KiB samples at the start, middle and end of large ones (the weights).
// Two folders with the same fingerprint embed identically for all practical purposes.
std::string model_fingerprint(const std::filesystem::path& dir);

}  // namespace mmfuse
