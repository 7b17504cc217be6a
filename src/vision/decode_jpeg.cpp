// JPEG decoding with libjpeg-turbo, configured like PIL 9.4's JpegDecode.c:
// default (ISLOW) DCT, fancy upsampling, no scaling. PIL opens 1-component
// files as L, 3-component files as RGB (libjpeg converts YCbCr) and
// 4-component files as CMYK read with Adobe (inverted) polarity; convert('RGB')
// then replicates L and maps CMYK with PIL's cmyk2rgb.
//
// Errors: libjpeg reports fatal errors through error_exit (vision/jpeg_error.h),
// which longjmps back into the small step functions below. They hold no C++ objects with
// destructors, so no destructor is skipped; the caller turns a failed step
// into mmfuse::Error. A premature end of data is fatal (PIL: "image file is
// truncated") until the last scanline has been read (libjpeg reads ahead, so
// a file that only lacks its EOI marker fails too); during
// jpeg_finish_decompress it is not, as in PIL. Other libjpeg warnings are
// ignored, as PIL ignores them.
#include <cstdio>
#include <cstring>
#include <vector>

#include "vision/decoders.h"
#include "vision/jpeg_error.h"

namespace mmfuse::detail {

namespace {

struct JpegState {
  jpeg_decompress_struct cinfo;
  JpegErrorManager err;
};

// Step 1: create the decompressor and read the header. Returns false on error.
bool read_header(JpegState* s, const uint8_t* data, size_t size) {
  if (setjmp(s->err.jump)) return false;
  jpeg_create_decompress(&s->cinfo);
  jpeg_mem_src(&s->cinfo, data, static_cast<unsigned long>(size));
  if (jpeg_read_header(&s->cinfo, TRUE) != JPEG_HEADER_OK) {
    std::snprintf(s->err.message, sizeof s->err.message, "no image in JPEG stream");
    return false;
  }
  return true;
}

inline uint8_t muldiv255(int a, int b) {
  const int tmp = a * b + 128;
  return static_cast<uint8_t>(((tmp >> 8) + tmp) >> 8);
}

inline uint8_t clip8(int v) {
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Step 2: decode every scanline into `out` (width*height*3). `row` holds one
// row of libjpeg output for the 1- and 4-component cases.
bool decode_pixels(JpegState* s, uint8_t* out, uint8_t* row) {
  if (setjmp(s->err.jump)) return false;
  jpeg_decompress_struct& c = s->cinfo;
  jpeg_start_decompress(&c);
  const int want_components =
      c.out_color_space == JCS_RGB ? 3 : (c.out_color_space == JCS_CMYK ? 4 : 1);
  if (c.output_width != c.image_width || c.output_height != c.image_height ||
      c.output_components != want_components) {
    std::snprintf(s->err.message, sizeof s->err.message, "unexpected decoder output layout");
    return false;
  }
  const size_t w = c.output_width;
  while (c.output_scanline < c.output_height) {
    uint8_t* dst = out + static_cast<size_t>(c.output_scanline) * w * 3;
    JSAMPROW rows[1] = {c.out_color_space == JCS_RGB ? dst : row};
    if (jpeg_read_scanlines(&c, rows, 1) != 1) {
      std::snprintf(s->err.message, sizeof s->err.message, "image file is truncated");
      return false;
    }
    if (c.out_color_space == JCS_GRAYSCALE) {
      for (size_t x = 0; x < w; ++x) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = row[x];
    } else if (c.out_color_space == JCS_CMYK) {
      // PIL's "CMYK;I" rawmode inverts libjpeg's output, then cmyk2rgb.
      for (size_t x = 0; x < w; ++x) {
        const int k = 255 - row[4 * x + 3];
        const int nk = 255 - k;
        for (int ch = 0; ch < 3; ++ch) {
          const int v = 255 - row[4 * x + ch];
          dst[3 * x + ch] = clip8(nk - muldiv255(v, nk));
        }
      }
    }
  }
  // PIL finishes too: a bad marker after the last scan fails, but running out
  // of data there only suspends its decoder, which PIL then ignores.
  s->err.eof_is_fatal = false;
  jpeg_finish_decompress(&c);
  return true;
}

struct JpegGuard {
  JpegState* s;
  ~JpegGuard() { jpeg_destroy_decompress(&s->cinfo); }
};

}  // namespace

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name,
                  const DecodeLimits& limits) {
  JpegState state;
  std::memset(&state, 0, sizeof state);
  state.cinfo.err = init_jpeg_error_manager(&state.err, true);
  JpegGuard guard{&state};  // jpeg_destroy is a no-op until jpeg_create has run

  if (!read_header(&state, data, size)) {
    image_error(ErrorKind::bad_input, name, std::string("corrupt JPEG: ") + state.err.message);
  }
  jpeg_decompress_struct& c = state.cinfo;
  switch (c.num_components) {
    case 1: c.out_color_space = JCS_GRAYSCALE; break;
    case 3: c.out_color_space = JCS_RGB; break;
    case 4: c.out_color_space = JCS_CMYK; break;
    default:
      image_error(ErrorKind::unsupported, name,
                  "cannot handle " + std::to_string(c.num_components) + "-component JPEG");
  }
  // PIL's defaults (no draft mode).
  c.dct_method = JDCT_ISLOW;
  c.do_fancy_upsampling = TRUE;
  c.scale_num = 1;
  c.scale_denom = 1;
  check_image_size(c.image_width, c.image_height, name, limits);

  Image img = make_image(static_cast<int>(c.image_width), static_cast<int>(c.image_height));
  std::vector<uint8_t> row(static_cast<size_t>(c.image_width) * 4);
  if (!decode_pixels(&state, img.rgb.data(), row.data())) {
    image_error(ErrorKind::bad_input, name, std::string("corrupt JPEG: ") + state.err.message);
  }
  return img;
}

}  // namespace mmfuse::detail
