// API keys sent as "Authorization: Bearer <key>". Keys are compared through
// their SHA-256 digests with CRYPTO_memcmp, so the time taken reveals neither
// the key nor how much of it matched (nor its length).
#pragma once

#include <array>
#include <string>
#include <vector>

namespace mmfuse::server {

enum class AuthResult { ok, missing, wrong };

class ApiKeys {
 public:
  explicit ApiKeys(const std::vector<std::string>& keys);
  bool enabled() const { return !digests_.empty(); }
  // Checks an Authorization header value ("" when absent).
  AuthResult check(const std::string& authorization) const;

 private:
  std::vector<std::array<unsigned char, 32>> digests_;
};

}  // namespace mmfuse::server
