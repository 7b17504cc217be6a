// HTTP plumbing shared by the route files: JSON responses, the error shape
// {"error":{"type","message"}}, status codes for mmfuse::Error kinds, request
// body parsing, base64 and data URLs, and image decoding under the size limits.
#pragma once

#include <httplib.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "mmfuse/error.h"
#include "core/strings.h"
#include "vision/image.h"

namespace mmfuse::server {

using Json = nlohmann::ordered_json;

// An error with an explicit HTTP status (413, 429, 503...).
class HttpError : public std::runtime_error {
 public:
  HttpError(int status, std::string type, const std::string& message)
      : std::runtime_error(message), status_(status), type_(std::move(type)) {}
  int status() const { return status_; }
  const std::string& type() const { return type_; }

 private:
  int status_;
  std::string type_;
};

// "bad_request", "unauthorized", "forbidden", "not_found", "method_not_allowed",
// "too_large", "unsupported", "unavailable", "timeout" or "internal".
const char* error_type_for_status(int status);
int status_for(ErrorKind kind);

void send_json(httplib::Response& res, const Json& body, int status = 200);
void send_error(httplib::Response& res, int status, const std::string& type,
                const std::string& message);
// Turns the exception being handled (call inside catch) into an error response.
void send_current_exception(httplib::Response& res);

// The body as a JSON object; throws bad_input naming the position of a syntax error.
Json parse_json_object(const httplib::Request& req);

// Strict base64 (standard alphabet, padding optional, whitespace not allowed).
// Throws bad_input naming `field`.
std::vector<uint8_t> base64_decode(const std::string& text, const std::string& field);
std::string base64_encode(const void* data, size_t size);

// The bytes of "data:<mime>;base64,<data>" or of plain base64.
std::vector<uint8_t> decode_data_url(const std::string& url, const std::string& field);

// Decodes an image after checking its header: not an image → 400, more than
// max_pixels → 413 (before any pixel is decoded), corrupt → 400.
Image decode_limited_image(const std::vector<uint8_t>& bytes, const std::string& field,
                           int64_t max_pixels);


}  // namespace mmfuse::server
