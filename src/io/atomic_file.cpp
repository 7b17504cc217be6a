#include "io/atomic_file.h"

#include <unistd.h>

#include <cstdio>
#include <string>

#include "mmfuse/error.h"

namespace mmfuse {

void write_file_atomic(const std::filesystem::path& path, std::string_view content) {
  namespace fs = std::filesystem;
  std::error_code ec;
  MMFUSE_CHECK(!fs::is_directory(path, ec), bad_input,
               path.string() + ": output path is a directory");
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  MMFUSE_CHECK(fs::is_directory(dir, ec), bad_input,
               path.string() + ": output folder does not exist");
  // Built by appending: GCC 12 warns falsely (-Wrestrict) on "." + std::string.
  std::string name(1, '.');
  name.append(path.filename().string()).append(".tmp-").append(std::to_string(::getpid()));
  const fs::path tmp = dir / name;
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  MMFUSE_CHECK(f != nullptr, bad_input, path.string() + ": cannot create output file");
  const bool written = std::fwrite(content.data(), 1, content.size(), f) == content.size();
  const bool flushed = std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  const bool closed = std::fclose(f) == 0;
  if (!written || !flushed || !closed) {
    fs::remove(tmp, ec);
    throw_error(ErrorKind::bad_input, path.string() + ": write failed (disk full?)");
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    const std::string why = ec.message();
    fs::remove(tmp, ec);
    throw_error(ErrorKind::bad_input, path.string() + ": cannot rename into place: " + why);
  }
}

void replace_folder(const std::filesystem::path& staged, const std::filesystem::path& target) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(target)) {
    fs::rename(staged, target);
    return;
  }
  MMFUSE_CHECK(fs::is_directory(target), bad_input,
               target.string() + ": exists and is not a folder");
  const fs::path old = target.string() + ".tmp-old";
  fs::remove_all(old, ec);
  fs::rename(target, old);
  fs::rename(staged, target);
  fs::remove_all(old, ec);
}

}  // namespace mmfuse
