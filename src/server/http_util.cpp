// HTTP helpers: error mapping, JSON bodies, base64, data URLs, limited image decode.
#include "server/http_util.h"

#include <charconv>
#include <cstdlib>

#include "store/store.h"
#include "vision/image_probe.h"

namespace mmfuse::server {

const char* error_type_for_status(int status) {
  switch (status) {
    case 400: return "bad_request";
    case 401: return "unauthorized";
    case 403: return "forbidden";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 408: return "timeout";
    case 413: return "too_large";
    case 414: return "too_large";
    case 415: return "unsupported";
    case 422: return "unsupported";
    case 429: return "unavailable";
    case 503: return "unavailable";
    case 504: return "timeout";
    default: return status >= 500 ? "internal" : "bad_request";
  }
}

int status_for(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::bad_input: return 400;
    case ErrorKind::not_found: return 404;
    case ErrorKind::unsupported: return 422;
    case ErrorKind::internal: return 500;
  }
  return 500;
}

void send_json(httplib::Response& res, const Json& body, int status) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& type,
                const std::string& message) {
  send_json(res, {{"error", {{"type", type}, {"message", message}}}}, status);
}

void send_current_exception(httplib::Response& res) {
  try {
    throw;
  } catch (const HttpError& e) {
    if (e.status() == 503 || e.status() == 429) res.set_header("Retry-After", "1");
    send_error(res, e.status(), e.type(), e.what());
  } catch (const store::StoreUnavailable& e) {
    // The database is away (restart, failover): retry soon, not a bad request.
    res.set_header("Retry-After", "1");
    send_error(res, 503, "unavailable", e.what());
  } catch (const Error& e) {
    const int status = status_for(e.kind());
    send_error(res, status, error_type_for_status(status), e.what());
  } catch (const nlohmann::json::exception& e) {
    // A field of the wrong type reached a .get<>() (handlers check first; this is the net).
    send_error(res, 400, "bad_request", std::string("request body: ") + e.what());
  } catch (const std::bad_alloc&) {
    send_error(res, 503, "unavailable", "out of memory");
  } catch (const std::exception& e) {
    send_error(res, 500, "internal", e.what());
  } catch (...) {
    send_error(res, 500, "internal", "unknown error");
  }
}

Json parse_json_object(const httplib::Request& req) {
  if (req.body.empty())
    throw_error(ErrorKind::bad_input, "request body: empty (expected a JSON object)");
  Json j;
  try {
    j = Json::parse(req.body);
  } catch (const nlohmann::json::parse_error& e) {
    throw_error(ErrorKind::bad_input,
                "request body: not valid JSON (at byte " + std::to_string(e.byte) + ")");
  }
  MMFUSE_CHECK(j.is_object(), bad_input, "request body: expected a JSON object");
  return j;
}

namespace {
int8_t base64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return static_cast<int8_t>(c - 'A');
  if (c >= 'a' && c <= 'z') return static_cast<int8_t>(c - 'a' + 26);
  if (c >= '0' && c <= '9') return static_cast<int8_t>(c - '0' + 52);
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}
}  // namespace

std::vector<uint8_t> base64_decode(const std::string& text, const std::string& field) {
  size_t n = text.size();
  while (n > 0 && text[n - 1] == '=' && text.size() - n < 2) --n;
  MMFUSE_CHECK(n % 4 != 1, bad_input, field + ": invalid base64 (bad length)");
  std::vector<uint8_t> out;
  out.reserve(n / 4 * 3 + 3);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; ++i) {
    const int8_t v = base64_value(static_cast<unsigned char>(text[i]));
    MMFUSE_CHECK(
        v >= 0, bad_input,
        field + ": invalid base64 (unexpected character at offset " + std::to_string(i) + ")");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>((acc >> bits) & 0xFF));
    }
  }
  const size_t padding = text.size() - n;
  MMFUSE_CHECK(padding == 0 || (n + padding) % 4 == 0, bad_input,
               field + ": invalid base64 (bad padding)");
  return out;
}

std::string base64_encode(const void* data, size_t size) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = static_cast<const uint8_t*>(data);
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  for (size_t i = 0; i < size; i += 3) {
    const uint32_t a = p[i], b = i + 1 < size ? p[i + 1] : 0, c = i + 2 < size ? p[i + 2] : 0;
    const uint32_t v = (a << 16) | (b << 8) | c;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += i + 1 < size ? alphabet[(v >> 6) & 63] : '=';
    out += i + 2 < size ? alphabet[v & 63] : '=';
  }
  return out;
}

std::vector<uint8_t> decode_data_url(const std::string& url, const std::string& field) {
  if (url.rfind("data:", 0) == 0) {
    const auto comma = url.find(',');
    MMFUSE_CHECK(comma != std::string::npos, bad_input, field + ": data URL without a comma");
    const std::string meta = url.substr(5, comma - 5);
    MMFUSE_CHECK(meta.size() >= 7 && meta.compare(meta.size() - 7, 7, ";base64") == 0, bad_input,
                 field + ": only base64 data URLs are accepted (data:image/png;base64,...)");
    return base64_decode(url.substr(comma + 1), field);
  }
  MMFUSE_CHECK(url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0, unsupported,
               field + ": remote URLs are not fetched; send the image as a data URL");
  return base64_decode(url, field);
}

Image decode_limited_image(const std::vector<uint8_t>& bytes, const std::string& field,
                           int64_t max_pixels) {
  MMFUSE_CHECK(!bytes.empty(), bad_input, field + ": empty image");
  const auto header = probe_image_header(bytes.data(), bytes.size());
  MMFUSE_CHECK(header.has_value(), bad_input, field + ": not a PNG, JPEG, WebP or BMP image");
  if (header->width <= 0 || header->height <= 0)
    throw_error(ErrorKind::bad_input, field + ": invalid image size");
  if (header->width > max_pixels || header->height > max_pixels ||
      header->width * header->height > max_pixels)
    throw HttpError(413, "too_large",
                    field + ": image of " + std::to_string(header->width) + "x" +
                        std::to_string(header->height) + " pixels is over the limit of " +
                        std::to_string(max_pixels) + " pixels");
  DecodeLimits limits;
  limits.max_pixels = max_pixels;
  return decode_image_memory(bytes.data(), bytes.size(), field, limits);
}


}  // namespace mmfuse::server
