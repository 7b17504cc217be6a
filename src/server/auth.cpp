// ApiKeys: constant-time bearer key check.
#include "server/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "mmfuse/error.h"

namespace mmfuse::server {

namespace {
std::array<unsigned char, 32> digest(const std::string& text) {
  std::array<unsigned char, 32> out{};
  unsigned int n = 0;
  MMFUSE_ASSERT(EVP_Digest(text.data(), text.size(), out.data(), &n, EVP_sha256(), nullptr) == 1 &&
                n == 32);
  return out;
}
}  // namespace

ApiKeys::ApiKeys(const std::vector<std::string>& keys) {
  for (const auto& k : keys) digests_.push_back(digest(k));
}

AuthResult ApiKeys::check(const std::string& authorization) const {
  if (authorization.empty()) return AuthResult::missing;
  static const std::string kScheme = "Bearer ";
  if (authorization.size() <= kScheme.size() ||
      OPENSSL_strncasecmp(authorization.c_str(), kScheme.c_str(), kScheme.size()) != 0)
    return AuthResult::missing;
  const auto presented = digest(authorization.substr(kScheme.size()));
  // Every key is compared, match or not, so the time does not say which matched.
  int matched = 0;
  for (const auto& d : digests_)
    matched |= CRYPTO_memcmp(d.data(), presented.data(), d.size()) == 0;
  return matched ? AuthResult::ok : AuthResult::wrong;
}

}  // namespace mmfuse::server
