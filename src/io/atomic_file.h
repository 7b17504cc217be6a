// Whole-file writes that never leave a half-written file: the content goes to
// a temporary file in the same folder, which is flushed and then renamed over
// the target (rename is atomic within one file system).
#pragma once

#include <filesystem>
#include <string_view>

namespace mmfuse {

// Throws ErrorKind::bad_input when the folder is missing or not writable; on
// any failure the temporary file is removed and the target left untouched.
void write_file_atomic(const std::filesystem::path& path, std::string_view content);

// Puts the finished folder `staged` in the place of `target` (renames; an old
// `target` is moved aside first and removed after), so a reader never sees a
// half-written folder. A `target` that exists and is not a folder: bad_input.
void replace_folder(const std::filesystem::path& staged, const std::filesystem::path& target);

}  // namespace mmfuse
