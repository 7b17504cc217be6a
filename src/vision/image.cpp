// Image decoding entry points: read the file, detect the format from its magic
// bytes and dispatch to the per-format decoder (decode_*.cpp).
//
// Every decoder reproduces PIL 9.4's Image.open(...).convert('RGB'):
// grey is replicated, palettes are expanded, alpha is dropped (not composited),
// 16-bit samples keep their high byte except 16-bit grey, which PIL opens as
// mode I and clips to 0..255. EXIF orientation is not applied.
#include "vision/image.h"

#include <cstring>
#include <fstream>
#include <limits>

#include "vision/decoders.h"

namespace mmfuse {

namespace detail {

void image_error(ErrorKind kind, const std::string& name, const std::string& what) {
  throw_error(kind, "image '" + name + "': " + what);
}

void check_image_size(int64_t width, int64_t height, const std::string& name,
                      const DecodeLimits& limits) {
  if (width <= 0 || height <= 0) {
    image_error(ErrorKind::bad_input, name,
                "invalid size " + std::to_string(width) + "x" + std::to_string(height));
  }
  // Each side is bounded first, so the product cannot overflow.
  if (width > std::numeric_limits<int>::max() / 4 || height > std::numeric_limits<int>::max() / 4 ||
      width * height > limits.max_pixels) {
    image_error(ErrorKind::bad_input, name,
                "image too large (" + std::to_string(width) + "x" + std::to_string(height) +
                    " pixels, the limit is " + std::to_string(limits.max_pixels) + " pixels)");
  }
}

Image make_image(int width, int height) {
  Image img;
  img.width = width;
  img.height = height;
  img.rgb.resize(static_cast<size_t>(width) * static_cast<size_t>(height) * 3);
  return img;
}

}  // namespace detail

namespace {

bool starts_with(const uint8_t* data, size_t size, const char* magic, size_t n) {
  return size >= n && std::memcmp(data, magic, n) == 0;
}

}  // namespace

Image decode_image_memory(const uint8_t* data, size_t size, const std::string& name,
                          const DecodeLimits& limits) {
  if (size == 0 || data == nullptr) detail::image_error(ErrorKind::bad_input, name, "empty file");
  if (starts_with(data, size, "\xFF\xD8\xFF", 3)) {
    return detail::decode_jpeg(data, size, name, limits);
  }
  if (starts_with(data, size, "\x89PNG\r\n\x1A\n", 8)) {
    return detail::decode_png(data, size, name, limits);
  }
  if (size >= 12 && starts_with(data, size, "RIFF", 4) && std::memcmp(data + 8, "WEBP", 4) == 0) {
    return detail::decode_webp(data, size, name, limits);
  }
  if (starts_with(data, size, "BM", 2)) return detail::decode_bmp(data, size, name, limits);
  if (starts_with(data, size, "GIF87a", 6) || starts_with(data, size, "GIF89a", 6)) {
    detail::image_error(ErrorKind::unsupported, name,
                        "GIF images are not supported (use JPEG, PNG, WebP or BMP)");
  }
  if (starts_with(data, size, "II*\0", 4) || starts_with(data, size, "MM\0*", 4)) {
    detail::image_error(ErrorKind::unsupported, name,
                        "TIFF images are not supported (use JPEG, PNG, WebP or BMP)");
  }
  detail::image_error(ErrorKind::bad_input, name,
                      "unrecognised image format (expected JPEG, PNG, WebP or BMP)");
}

Image decode_image_file(const std::filesystem::path& path, const DecodeLimits& limits) {
  const std::string name = path.string();
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    detail::image_error(ErrorKind::bad_input, name, "is a directory, not an image file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) detail::image_error(ErrorKind::not_found, name, "cannot open file");
  std::vector<uint8_t> bytes;
  in.seekg(0, std::ios::end);
  const std::streamoff end = in.tellg();
  if (end > 0) {
    in.seekg(0, std::ios::beg);
    bytes.resize(static_cast<size_t>(end));
    in.read(reinterpret_cast<char*>(bytes.data()), end);
    if (in.gcount() != end) detail::image_error(ErrorKind::bad_input, name, "read error");
  } else {
    // Not seekable (a pipe) or empty: read to the end.
    in.clear();
    in.seekg(0, std::ios::beg);
    in.clear();
    char buf[65536];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
      bytes.insert(bytes.end(), buf, buf + in.gcount());
    }
  }
  return decode_image_memory(bytes.data(), bytes.size(), name, limits);
}

}  // namespace mmfuse
