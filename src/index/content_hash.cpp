// SHA-256 through OpenSSL's EVP interface (uses the CPU's SHA extensions).
#include "index/content_hash.h"

#include <openssl/evp.h>

#include <algorithm>
#include <fstream>
#include <memory>

#include "mmfuse/error.h"

namespace fs = std::filesystem;

namespace mmfuse {

namespace {

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    MMFUSE_ASSERT(ctx_ && EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) == 1);
  }
  void update(const void* data, size_t size) { EVP_DigestUpdate(ctx_.get(), data, size); }
  void update(const std::string& s) {
    update(s.data(), s.size() + 1);
  }  // with the NUL: unambiguous joins
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_.get(), md, &len);
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
      out.push_back(digits[md[i] >> 4]);
      out.push_back(digits[md[i] & 15]);
    }
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

}  // namespace

std::string sha256_hex(const void* data, size_t size) {
  Sha256 h;
  h.update(data, size);
  return h.hex();
}

std::string text_hash(const std::string& text) {
  Sha256 h;
  h.update(std::string("text"));
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
  Sha256 h;
  std::vector<char> buf(kSample);
  for (const auto& f : files) {
    const size_t size = static_cast<size_t>(fs::file_size(f, ec));
    h.update(f.filename().string());
    h.update(std::to_string(size));
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
