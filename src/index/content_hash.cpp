// Content hashes and model fingerprints over io/digest (OpenSSL SHA-256).
#include "index/content_hash.h"

#include <algorithm>
#include <fstream>

#include "io/digest.h"
#include "mmfuse/error.h"

namespace fs = std::filesystem;

namespace mmfuse {

namespace {

// Strings go in with their NUL, so joined fields stay unambiguous.
void update_with_nul(Digest& d, const std::string& s) {
  d.update(s.data(), s.size() + 1);
}

}  // namespace

std::string text_hash(const std::string& text) {
  Digest h = Digest::sha256();
  update_with_nul(h, "text");
  h.update(text.data(), text.size());
  return h.hex();
}

std::vector<uint8_t> read_file_bytes(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw_error(ErrorKind::not_found, path.string() + ": no such file");
  if (fs::is_directory(path, ec))
    throw_error(ErrorKind::bad_input, path.string() + ": is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw_error(ErrorKind::bad_input, path.string() + ": cannot be read (permission denied?)");
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) throw_error(ErrorKind::bad_input, path.string() + ": cannot be read");
  in.seekg(0);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size))
    throw_error(ErrorKind::bad_input, path.string() + ": read failed");
  return bytes;
}

std::string model_fingerprint(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw_error(ErrorKind::not_found, dir.string() + ": no such model folder");
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  constexpr size_t kSmall = 4 << 20, kSample = 64 << 10;
  Digest h = Digest::sha256();
  std::vector<char> buf(kSample);
  for (const auto& f : files) {
    const size_t size = static_cast<size_t>(fs::file_size(f, ec));
    update_with_nul(h, f.filename().string());
    update_with_nul(h, std::to_string(size));
    std::ifstream in(f, std::ios::binary);
    if (!in) throw_error(ErrorKind::bad_input, f.string() + ": cannot be read");
    if (size <= kSmall) {
      std::vector<char> all(size);
      in.read(all.data(), static_cast<std::streamsize>(size));
      h.update(all.data(), all.size());
      continue;
    }
    for (size_t offset : {size_t{0}, size / 2, size - kSample}) {
      in.seekg(static_cast<std::streamoff>(offset));
      in.read(buf.data(), static_cast<std::streamsize>(kSample));
      h.update(buf.data(), static_cast<size_t>(in.gcount()));
    }
  }
  return h.hex();
}

}  // namespace mmfuse
