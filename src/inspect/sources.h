// Where an inspection point's data comes from: a file, or a folder that a
// camera or robot drops files into (the newest matching file is taken).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace mmfuse::inspect {

enum class SourceKind { image, infrared, audio, csv };

bool has_source_extension(const std::filesystem::path& path, SourceKind kind);

// A file is returned as is (it must exist); a folder yields its newest file
// (by modification time, then name) with a matching extension, or nothing when
// it holds none. A path that does not exist yields nothing (missing modality).
std::optional<std::filesystem::path> resolve_source(const std::filesystem::path& source,
                                                    SourceKind kind);

// Whole-file read; ErrorKind::not_found when it cannot be opened.
std::string read_file_bytes(const std::filesystem::path& path);

}  // namespace mmfuse::inspect
