// The bytes behind an image_url of a generation request: data: URLs always;
// http(s):// and file:// only for models configured with allow_remote_images
// (otherwise a 400 that names the field), fetched with a size cap and timeout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mmfuse::server {

struct ImageSourcePolicy {
  bool allow_remote = false;  // http(s):// and file:// URLs
  size_t max_bytes = 32u << 20;
  int timeout_s = 30;
};

// Throws bad_input naming `field` (refused scheme, bad base64, missing file,
// download failure or an image over max_bytes).
std::vector<uint8_t> image_url_bytes(const std::string& url, const std::string& field,
                                     const ImageSourcePolicy& policy);

}  // namespace mmfuse::server
