// Message digests (SHA-256, and SHA-1 for git blob ids) through OpenSSL's EVP
// interface, which uses the CPU's SHA extensions. Used for content hashes in the
// index and for verifying downloads.
// Thread-safety: one Digest per thread; the free functions may run concurrently.
#pragma once

#include <openssl/types.h>

#include <cstddef>
#include <string>

namespace mmfuse {

// An incremental digest: update() any number of times, then hex() once.
// Errors from OpenSSL throw Error(internal).
class Digest {
 public:
  static Digest sha256();
  static Digest sha1();
  ~Digest();
  Digest(Digest&& other) noexcept;
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;
  Digest& operator=(Digest&&) = delete;

  void update(const void* data, size_t size);
  // The digest as lower-case hex; finishes the digest (no updates after it).
  std::string hex();

 private:
  explicit Digest(const EVP_MD* md);
  EVP_MD_CTX* ctx_;
};

// Lower-case hex SHA-256 of `size` bytes at `data`.
std::string sha256_hex(const void* data, size_t size);

}  // namespace mmfuse
