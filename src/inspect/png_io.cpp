// libpng read of raw grey samples, and evidence image files. libpng reports
// errors by longjmp, so the functions that call it hold no C++ objects with
// destructors between setjmp and the libpng calls (buffers are allocated
// before setjmp).
#include "inspect/png_io.h"

#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "io/atomic_file.h"
#include "mmfuse/error.h"
#include "vision/image_encode.h"
#include "vision/png_memory.h"

namespace mmfuse::inspect {

namespace {

// Header step: returns 0 on success, 1 on libpng error, 2 on a colour image.
int read_header(png_structp png, png_infop info, PngMemorySource* src, png_uint_32* w,
                png_uint_32* h, int* depth, int* color) {
  if (setjmp(png_jmpbuf(png))) return 1;
  png_set_read_fn(png, src, png_read_from_memory);
  png_read_info(png, info);
  int interlace = 0;
  png_get_IHDR(png, info, w, h, depth, color, &interlace, nullptr, nullptr);
  if (*color != PNG_COLOR_TYPE_GRAY && *color != PNG_COLOR_TYPE_GRAY_ALPHA) return 2;
  if (*depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (*color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_strip_alpha(png);
  if (*depth == 16) png_set_swap(png);  // little-endian host order
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  return 0;
}

int read_rows(png_structp png, png_infop info, png_bytep* rows) {
  if (setjmp(png_jmpbuf(png))) return 1;
  png_read_image(png, rows);
  png_read_end(png, nullptr);
  return 0;
}

}  // namespace

GrayFrame decode_gray_png(const uint8_t* data, size_t size, const std::string& name) {
  MMFUSE_CHECK(size >= 8 && png_sig_cmp(data, 0, 8) == 0, bad_input,
               "infrared image '" + name + "': not a PNG file");
  PngErrorMessage err{};
  png_structp png =
      png_create_read_struct(PNG_LIBPNG_VER_STRING, &err, png_record_error, png_ignore_warning);
  MMFUSE_CHECK(png != nullptr, internal, "libpng: cannot create read struct");
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    throw_error(ErrorKind::internal, "libpng: cannot create info struct");
  }
  png_set_user_limits(png, 20000, 20000);
  PngMemorySource src{data, size, 0};
  png_uint_32 w = 0, h = 0;
  int depth = 0, color = 0;
  const int rc = read_header(png, info, &src, &w, &h, &depth, &color);
  if (rc != 0) {
    png_destroy_read_struct(&png, &info, nullptr);
    if (rc == 2)
      throw_error(ErrorKind::unsupported,
                  "infrared image '" + name + "': colour PNG; expected 8- or 16-bit grey counts");
    throw_error(ErrorKind::bad_input, "infrared image '" + name + "': " + err.text);
  }
  GrayFrame f;
  f.width = static_cast<int>(w);
  f.height = static_cast<int>(h);
  f.bit_depth = depth == 16 ? 16 : 8;
  const size_t bps = depth == 16 ? 2 : 1;
  std::vector<uint8_t> buf;
  std::vector<png_bytep> rows;
  try {
    buf.resize(static_cast<size_t>(w) * h * bps);
    rows.resize(h);
  } catch (...) {
    png_destroy_read_struct(&png, &info, nullptr);
    throw;
  }
  for (png_uint_32 y = 0; y < h; ++y) rows[y] = buf.data() + static_cast<size_t>(y) * w * bps;
  if (read_rows(png, info, rows.data()) != 0) {
    png_destroy_read_struct(&png, &info, nullptr);
    throw_error(ErrorKind::bad_input, "infrared image '" + name + "': " + err.text);
  }
  png_destroy_read_struct(&png, &info, nullptr);
  f.pixels.resize(static_cast<size_t>(w) * h);
  if (bps == 2) {
    std::memcpy(f.pixels.data(), buf.data(), buf.size());
  } else {
    for (size_t i = 0; i < f.pixels.size(); ++i) f.pixels[i] = buf[i];
  }
  return f;
}

GrayFrame read_gray_png(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  MMFUSE_CHECK(in, not_found, "infrared image '" + path.string() + "' cannot be opened");
  std::ostringstream s;
  s << in.rdbuf();
  const std::string bytes = s.str();
  return decode_gray_png(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                         path.string());
}

void write_png(const std::filesystem::path& path, const void* pixels, int width, int height,
               int channels, int bit_depth) {
  write_file_atomic(path, encode_png(pixels, width, height, channels, bit_depth));
}

}  // namespace mmfuse::inspect
