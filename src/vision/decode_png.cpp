// PNG decoding with libpng, converted to RGB the way PIL 9.4 does it. PIL's
// modes and raw modes by (bit depth, colour type), then convert('RGB'):
//   grey 1/2/4/8   -> "1"/"L": values scaled to 0..255 and replicated
//   grey 16        -> "I" (I;16B): the 16-bit value, clipped to 0..255
//   RGB 8/16       -> "RGB": 16-bit samples keep their high byte
//   palette 1..8   -> "P": palette lookup; indices past the PLTE entries map to
//                     PIL's default grey ramp (i, i, i); tRNS is ignored
//   grey+alpha 8   -> "LA": alpha dropped
//   grey+alpha 16  -> "RGBA" (LA;16B): high byte of grey, alpha dropped
//   RGBA 8/16      -> "RGBA": alpha dropped, high bytes
// tRNS, gAMA, sBIT, iCCP and the other colour chunks do not change the pixels.
//
// Damage is judged as PIL judges it: every chunk before the first IDAT must
// be complete with a correct CRC, IDAT CRCs are not checked, and once every
// row has been decoded nothing after it matters (a file cut inside the final
// zlib checksum, or without IEND, still decodes).
//
// Errors: libpng's error callback records the message and longjmps back into
// the step functions below, which hold no C++ objects with destructors.
#include <png.h>
#include <zlib.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <vector>

#include "vision/decoders.h"
#include "vision/png_memory.h"

namespace mmfuse::detail {

namespace {

// Converts one row of libpng output (after png_set_packing: one sample per
// byte below 8 bits, big-endian 16-bit samples) to RGB.
struct RowConverter {
  int color_type;
  int bit_depth;
  size_t width;
  uint8_t palette[256 * 3];

  void convert(const uint8_t* src, uint8_t* dst) const {
    const size_t w = width;
    switch (color_type) {
      case PNG_COLOR_TYPE_GRAY:
        if (bit_depth == 16) {
          for (size_t x = 0; x < w; ++x) {
            const unsigned v = (unsigned{src[2 * x]} << 8) | src[2 * x + 1];
            dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = static_cast<uint8_t>(v > 255 ? 255 : v);
          }
        } else {
          const unsigned scale = 255u / ((1u << bit_depth) - 1u);  // 255, 85, 17, 1
          for (size_t x = 0; x < w; ++x) {
            dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = static_cast<uint8_t>(src[x] * scale);
          }
        }
        break;
      case PNG_COLOR_TYPE_RGB: {
        const size_t step = bit_depth == 16 ? 2 : 1;
        for (size_t i = 0; i < w * 3; ++i) dst[i] = src[i * step];
        break;
      }
      case PNG_COLOR_TYPE_PALETTE:
        for (size_t x = 0; x < w; ++x) std::memcpy(dst + 3 * x, palette + 3 * src[x], 3);
        break;
      case PNG_COLOR_TYPE_GRAY_ALPHA: {
        const size_t step = bit_depth == 16 ? 4 : 2;
        for (size_t x = 0; x < w; ++x) {
          dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = src[x * step];
        }
        break;
      }
      case PNG_COLOR_TYPE_RGB_ALPHA: {
        const size_t step = bit_depth == 16 ? 2 : 1;
        for (size_t x = 0; x < w; ++x) {
          for (size_t c = 0; c < 3; ++c) dst[3 * x + c] = src[(4 * x + c) * step];
        }
        break;
      }
      default: break;
    }
  }
};

struct PngHandles {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngHandles() {
    if (png != nullptr) png_destroy_read_struct(&png, info != nullptr ? &info : nullptr, nullptr);
  }
};

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// Walks the chunk list. PIL's PngImageFile._open reads the chunks before the
// first IDAT whole and verifies their CRCs: a problem there is returned as an
// error message. Past that point nothing is checked, but a file that ends
// inside the data of an IDAT chunk is noted in *cut_chunk / *cut_avail (the
// chunk's offset and the data bytes present) so that the caller can hand
// libpng only what exists, the way PIL's decoder simply runs out of input.
std::string scan_chunks(const uint8_t* data, size_t size, size_t* cut_chunk, size_t* cut_avail) {
  size_t pos = 8;
  bool seen_idat = false;
  while (size - pos >= 8) {
    const uint32_t length = be32(data + pos);
    const uint8_t* type = data + pos + 4;
    const std::string type_name(reinterpret_cast<const char*>(type), 4);
    if (std::memcmp(type, "IDAT", 4) == 0) seen_idat = true;
    if (!seen_idat && std::memcmp(type, "IEND", 4) == 0) return "";
    if (length > 0x7fffffffu) return seen_idat ? "" : "invalid length of chunk " + type_name;
    const size_t rest = size - pos - 8;
    if (rest < size_t{length} + 4) {
      if (!seen_idat) return "truncated chunk " + type_name;
      if (std::memcmp(type, "IDAT", 4) == 0 && rest < length) {
        *cut_chunk = pos;
        *cut_avail = rest;
      }
      return "";
    }
    if (!seen_idat) {
      const uLong crc = crc32(crc32(0L, type, 4), data + pos + 8, length);
      if (crc != be32(data + pos + 8 + length)) return "bad checksum in chunk " + type_name;
    }
    pos += size_t{length} + 12;
  }
  return seen_idat ? "" : "truncated chunk header";
}

// True once libpng has delivered every row (also when it failed afterwards,
// reading past the image data).
bool all_rows_done(png_structp png, png_uint_32 height, bool interlaced) {
  if (interlaced) return png_get_current_pass_number(png) >= 7;
  return png_get_current_row_number(png) >= height;
}

// Step 1: read the chunks up to the first IDAT. Returns false on error.
bool read_info(png_structp png, png_infop info, PngMemorySource* src) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_set_read_fn(png, src, png_read_from_memory);
  png_set_user_limits(png, 0x7fffffff, 0x7fffffff);  // the pixel limit is checked by the caller
  png_set_benign_errors(png, 1);
  // Header CRCs were checked by check_header_chunks; PIL ignores IDAT CRCs.
  png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
  // Ancillary chunks that cannot change the pixels: skip their processing.
  static const png_byte kIgnored[] = "iCCP\0zTXt\0iTXt\0tEXt\0sPLT\0eXIf\0hIST\0pCAL\0sCAL\0";
  png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, kIgnored, 9);
  png_read_info(png, info);
  return true;
}

// Step 2: set up the transforms (one sample per byte below 8 bits, Adam7
// de-interlacing) and return the row size in *rowbytes.
bool setup_transforms(png_structp png, png_infop info, int bit_depth, size_t* rowbytes,
                      int* passes) {
  if (setjmp(png_jmpbuf(png))) return false;
  if (bit_depth < 8) png_set_packing(png);
  *passes = png_set_interlace_handling(png);
  png_read_update_info(png, info);
  *rowbytes = png_get_rowbytes(png, info);
  return true;
}

// Step 3a (not interlaced): read and convert row by row.
bool read_rows(png_structp png, const RowConverter* conv, uint8_t* row, uint8_t* out,
               size_t height) {
  if (setjmp(png_jmpbuf(png))) return false;
  for (size_t y = 0; y < height; ++y) {
    png_read_row(png, row, nullptr);
    conv->convert(row, out + y * conv->width * 3);
  }
  return true;
}

// Step 3b (interlaced): read the whole image through `rows`.
bool read_image(png_structp png, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_image(png, rows);
  return true;
}

}  // namespace

Image decode_png(const uint8_t* data, size_t size, const std::string& name,
                 const DecodeLimits& limits) {
  PngErrorMessage err{};
  PngMemorySource src{data, size, 0};
  PngHandles h;
  h.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &err, png_record_error, png_ignore_warning);
  if (h.png == nullptr) image_error(ErrorKind::internal, name, "cannot create PNG reader");
  h.info = png_create_info_struct(h.png);
  if (h.info == nullptr) image_error(ErrorKind::internal, name, "cannot create PNG reader");

  const auto fail = [&]() {
    image_error(ErrorKind::bad_input, name, std::string("corrupt PNG: ") + err.text);
  };
  size_t cut_chunk = 0, cut_avail = 0;
  const std::string header_problem = scan_chunks(data, size, &cut_chunk, &cut_avail);
  if (!header_problem.empty()) {
    image_error(ErrorKind::bad_input, name, "corrupt PNG: " + header_problem);
  }
  std::vector<uint8_t> patched;
  if (cut_chunk != 0) {
    // Shorten the cut IDAT to the bytes present and end the stream with IEND.
    static const uint8_t kTail[16] = {0,   0,   0,   0,   0,    0,    0,    0,
                                      'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
    patched.assign(data, data + cut_chunk + 8 + cut_avail);
    for (int i = 0; i < 4; ++i)
      patched[cut_chunk + i] = static_cast<uint8_t>(cut_avail >> (24 - 8 * i));
    patched.insert(patched.end(), kTail, kTail + sizeof kTail);  // CRC (ignored) + IEND
    src = PngMemorySource{patched.data(), patched.size(), 0};
  }
  if (!read_info(h.png, h.info, &src)) fail();

  const png_uint_32 width = png_get_image_width(h.png, h.info);
  const png_uint_32 height = png_get_image_height(h.png, h.info);
  const int bit_depth = png_get_bit_depth(h.png, h.info);
  const int color_type = png_get_color_type(h.png, h.info);
  check_image_size(width, height, name, limits);

  RowConverter conv{};
  conv.color_type = color_type;
  conv.bit_depth = bit_depth;
  conv.width = width;
  if (color_type == PNG_COLOR_TYPE_PALETTE) {
    for (int i = 0; i < 256; ++i) {
      conv.palette[3 * i] = conv.palette[3 * i + 1] = conv.palette[3 * i + 2] =
          static_cast<uint8_t>(i);
    }
    png_colorp plte = nullptr;
    int num = 0;
    if (png_get_PLTE(h.png, h.info, &plte, &num) == 0 || plte == nullptr) {
      image_error(ErrorKind::bad_input, name, "corrupt PNG: palette image without PLTE");
    }
    for (int i = 0; i < num && i < 256; ++i) {
      conv.palette[3 * i] = plte[i].red;
      conv.palette[3 * i + 1] = plte[i].green;
      conv.palette[3 * i + 2] = plte[i].blue;
    }
  } else if (color_type != PNG_COLOR_TYPE_GRAY && color_type != PNG_COLOR_TYPE_RGB &&
             color_type != PNG_COLOR_TYPE_GRAY_ALPHA && color_type != PNG_COLOR_TYPE_RGB_ALPHA) {
    image_error(ErrorKind::bad_input, name,
                "corrupt PNG: invalid colour type " + std::to_string(color_type));
  }

  size_t rowbytes = 0;
  int passes = 1;
  if (!setup_transforms(h.png, h.info, bit_depth, &rowbytes, &passes)) fail();
  const int channels = png_get_channels(h.png, h.info);
  const size_t expected_rowbytes =
      static_cast<size_t>(width) * channels * (bit_depth == 16 ? 2 : 1);
  if (rowbytes != expected_rowbytes) {
    image_error(ErrorKind::internal, name, "unexpected PNG row size");
  }

  Image img = make_image(static_cast<int>(width), static_cast<int>(height));
  if (passes == 1) {
    std::vector<uint8_t> row(rowbytes);
    if (!read_rows(h.png, &conv, row.data(), img.rgb.data(), height)) {
      if (!all_rows_done(h.png, height, false)) fail();
      // The last row reached `row` before libpng failed past the image data.
      conv.convert(row.data(), img.rgb.data() + (size_t{height} - 1) * width * 3);
    }
  } else {
    std::vector<uint8_t> raw(rowbytes * height);
    std::vector<png_bytep> rows(height);
    for (size_t y = 0; y < height; ++y) rows[y] = raw.data() + y * rowbytes;
    if (!read_image(h.png, rows.data()) && !all_rows_done(h.png, height, true)) fail();
    for (size_t y = 0; y < height; ++y) conv.convert(rows[y], img.rgb.data() + y * width * 3);
  }
  return img;
}

}  // namespace mmfuse::detail
