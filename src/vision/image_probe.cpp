// probe_image_header: PNG IHDR, JPEG SOFn, WebP (libwebp's header parser) and
// BMP info headers. Only bounds-checked reads of the first bytes.
#include "vision/image_probe.h"

#include <webp/decode.h>

#include <cstdlib>
#include <cstring>

namespace mmfuse {

namespace {

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
uint16_t be16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
uint32_t le32(const uint8_t* p) {
  return (uint32_t{p[3]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[1]} << 8) | p[0];
}
uint16_t le16(const uint8_t* p) {
  return static_cast<uint16_t>((p[1] << 8) | p[0]);
}

std::optional<ImageHeader> probe_png(const uint8_t* d, size_t n) {
  // Signature (8), chunk length (4), "IHDR" (4), width (4), height (4).
  if (n < 24 || std::memcmp(d + 12, "IHDR", 4) != 0) return std::nullopt;
  return ImageHeader{"png", be32(d + 16), be32(d + 20)};
}

std::optional<ImageHeader> probe_jpeg(const uint8_t* d, size_t n) {
  size_t pos = 2;
  while (pos + 4 <= n) {
    if (d[pos] != 0xFF) {  // extraneous bytes before a marker: skipped, as libjpeg does
      ++pos;
      continue;
    }
    const uint8_t marker = d[pos + 1];
    if (marker == 0xFF) {  // fill byte
      ++pos;
      continue;
    }
    if (marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) {
      pos += 2;
      continue;
    }
    const size_t length = be16(d + pos + 2);
    if (length < 2) return std::nullopt;
    const bool sof =
        marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (sof) {
      if (pos + 9 > n) return std::nullopt;
      return ImageHeader{"jpeg", be16(d + pos + 7), be16(d + pos + 5)};
    }
    if (marker == 0xD9 || marker == 0xDA) return std::nullopt;  // no frame header before the scan
    pos += 2 + length;
  }
  return std::nullopt;
}

std::optional<ImageHeader> probe_webp(const uint8_t* d, size_t n) {
  int w = 0, h = 0;
  if (!WebPGetInfo(d, n, &w, &h)) return std::nullopt;
  return ImageHeader{"webp", w, h};
}

std::optional<ImageHeader> probe_bmp(const uint8_t* d, size_t n) {
  if (n < 26) return std::nullopt;
  const uint32_t header = le32(d + 14);
  if (header == 12) return ImageHeader{"bmp", le16(d + 18), le16(d + 20)};
  if (header < 40 || n < 26) return std::nullopt;
  const int32_t w = static_cast<int32_t>(le32(d + 18)), h = static_cast<int32_t>(le32(d + 22));
  return ImageHeader{"bmp", w, std::llabs(static_cast<long long>(h))};
}

}  // namespace

std::optional<ImageHeader> probe_image_header(const uint8_t* data, size_t size) {
  if (data == nullptr || size < 4) return std::nullopt;
  if (size >= 8 && std::memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0) return probe_png(data, size);
  if (std::memcmp(data, "\xFF\xD8\xFF", 3) == 0) return probe_jpeg(data, size);
  if (size >= 12 && std::memcmp(data, "RIFF", 4) == 0 && std::memcmp(data + 8, "WEBP", 4) == 0)
    return probe_webp(data, size);
  if (std::memcmp(data, "BM", 2) == 0) return probe_bmp(data, size);
  return std::nullopt;
}

}  // namespace mmfuse
