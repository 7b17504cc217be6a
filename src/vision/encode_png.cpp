// PNG encoding with libpng (see image_encode.h). libpng reports errors through
// longjmp (vision/png_memory.h); the step that calls it holds no C++ objects
// with destructors (the row pointers are made before it).
#include <vector>

#include "mmfuse/error.h"
#include "vision/image_encode.h"
#include "vision/png_memory.h"

namespace mmfuse {

namespace {

int write_all(png_structp png, png_infop info, std::string* out, png_uint_32 w, png_uint_32 h,
              int depth, int color, png_bytep* rows) {
  if (setjmp(png_jmpbuf(png))) return 1;
  png_set_write_fn(png, out, png_write_to_string, png_flush_nothing);
  png_set_IHDR(png, info, w, h, depth, color, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_set_compression_level(png, 3);  // evidence: fast over small
  png_write_info(png, info);
  if (depth == 16) png_set_swap(png);
  png_write_image(png, rows);
  png_write_end(png, nullptr);
  return 0;
}

}  // namespace

std::string encode_png(const void* pixels, int width, int height, int channels, int bit_depth) {
  MMFUSE_ASSERT(width > 0 && height > 0 && (channels == 1 || channels == 3));
  MMFUSE_ASSERT(bit_depth == 8 || (bit_depth == 16 && channels == 1));
  std::string out;
  const size_t stride = static_cast<size_t>(width) * channels * (bit_depth / 8);
  std::vector<png_bytep> rows(static_cast<size_t>(height));
  auto* base = const_cast<png_bytep>(static_cast<const uint8_t*>(pixels));
  for (int y = 0; y < height; ++y) rows[static_cast<size_t>(y)] = base + stride * y;
  PngErrorMessage err{};
  png_structp png =
      png_create_write_struct(PNG_LIBPNG_VER_STRING, &err, png_record_error, png_ignore_warning);
  MMFUSE_CHECK(png != nullptr, internal, "libpng: cannot create write struct");
  png_infop info = png_create_info_struct(png);
  const int rc =
      info == nullptr
          ? 1
          : write_all(png, info, &out, static_cast<png_uint_32>(width),
                      static_cast<png_uint_32>(height), bit_depth,
                      channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, rows.data());
  png_destroy_write_struct(&png, &info);
  MMFUSE_CHECK(rc == 0, internal, std::string("PNG encode failed: ") + err.text);
  return out;
}

}  // namespace mmfuse
