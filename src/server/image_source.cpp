// image_url -> bytes: data URLs, and (when allowed) files and HTTP downloads through libcurl.
#include "server/image_source.h"

#include <curl/curl.h>

#include <filesystem>
#include <fstream>

#include "mmfuse/error.h"
#include "server/http_util.h"

namespace mmfuse::server {

namespace {

bool starts_with(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

std::vector<uint8_t> read_file_url(const std::string& url, const std::string& field,
                                   size_t max_bytes) {
  std::string path = url.substr(7);  // file://
  if (starts_with(path, "localhost/")) path = path.substr(9);
  MMFUSE_CHECK(!path.empty() && path[0] == '/', bad_input,
               field + ": file URLs must be absolute (file:///path/to/image.png)");
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  MMFUSE_CHECK(!ec, bad_input, field + ": cannot read " + path);
  MMFUSE_CHECK(
      size <= max_bytes, bad_input,
      field + ": " + path + " is over the limit of " + std::to_string(max_bytes) + " bytes");
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> bytes(size);
  MMFUSE_CHECK(in && in.read(reinterpret_cast<char*>(bytes.data()), std::streamsize(size)),
               bad_input, field + ": cannot read " + path);
  return bytes;
}

struct Download {
  std::vector<uint8_t> bytes;
  size_t max_bytes = 0;
  bool too_large = false;
};

size_t on_data(char* data, size_t size, size_t count, void* user) {
  auto* d = static_cast<Download*>(user);
  const size_t n = size * count;
  if (d->bytes.size() + n > d->max_bytes) {
    d->too_large = true;
    return 0;  // aborts the transfer
  }
  d->bytes.insert(d->bytes.end(), data, data + n);
  return n;
}

std::vector<uint8_t> download(const std::string& url, const std::string& field,
                              const ImageSourcePolicy& policy) {
  CURL* curl = curl_easy_init();
  MMFUSE_CHECK(curl != nullptr, internal, field + ": curl_easy_init failed");
  Download d;
  d.max_bytes = policy.max_bytes;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, long(policy.timeout_s));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &d);
  const CURLcode rc = curl_easy_perform(curl);
  curl_easy_cleanup(curl);
  MMFUSE_CHECK(
      !d.too_large, bad_input,
      field + ": the image is over the limit of " + std::to_string(policy.max_bytes) + " bytes");
  MMFUSE_CHECK(rc == CURLE_OK, bad_input,
               field + ": cannot download " + url + ": " + curl_easy_strerror(rc));
  return std::move(d.bytes);
}

}  // namespace

std::vector<uint8_t> image_url_bytes(const std::string& url, const std::string& field,
                                     const ImageSourcePolicy& policy) {
  const bool remote =
      starts_with(url, "http://") || starts_with(url, "https://") || starts_with(url, "file://");
  if (remote) {
    MMFUSE_CHECK(policy.allow_remote, bad_input,
                 field +
                     ": only data: URLs are accepted (data:image/png;base64,...); this model "
                     "is not configured with allow_remote_images");
    if (starts_with(url, "file://")) return read_file_url(url, field, policy.max_bytes);
    return download(url, field, policy);
  }
  MMFUSE_CHECK(starts_with(url, "data:"), bad_input,
               field + ": expected a data: URL (data:image/png;base64,...)");
  return decode_data_url(url, field);
}

}  // namespace mmfuse::server
