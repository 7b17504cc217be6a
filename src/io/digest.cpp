// OpenSSL EVP digests (see digest.h).
#include "io/digest.h"

#include <openssl/evp.h>

#include "mmfuse/error.h"

namespace mmfuse {

Digest::Digest(const EVP_MD* md) : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_, md, nullptr) != 1) {
    EVP_MD_CTX_free(ctx_);
    throw_error(ErrorKind::internal, "OpenSSL: cannot initialise a digest");
  }
}

Digest Digest::sha256() {
  return Digest(EVP_sha256());
}

Digest Digest::sha1() {
  return Digest(EVP_sha1());
}

Digest::~Digest() {
  EVP_MD_CTX_free(ctx_);
}

Digest::Digest(Digest&& other) noexcept : ctx_(other.ctx_) {
  other.ctx_ = nullptr;
}

void Digest::update(const void* data, size_t size) {
  if (size != 0 && EVP_DigestUpdate(ctx_, data, size) != 1)
    throw_error(ErrorKind::internal, "OpenSSL: digest update failed");
}

std::string Digest::hex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx_, md, &len) != 1)
    throw_error(ErrorKind::internal, "OpenSSL: digest final failed");
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    out += digits[md[i] >> 4];
    out += digits[md[i] & 15];
  }
  return out;
}

std::string sha256_hex(const void* data, size_t size) {
  Digest d = Digest::sha256();
  d.update(data, size);
  return d.hex();
}

}  // namespace mmfuse
