// Expands command-line inputs (files and folders) into a sorted list of audio
// files: folders are searched recursively for the extensions libsndfile reads.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace mmfuse {

bool has_audio_extension(const std::filesystem::path& path);

// A missing input is ErrorKind::not_found; no audio at all is bad_input naming `what`.
std::vector<std::filesystem::path> collect_audio_files(const std::vector<std::string>& inputs,
                                                       const std::string& what);

}  // namespace mmfuse
