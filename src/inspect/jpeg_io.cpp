// libjpeg decode-with-scaling (see jpeg_io.h). libjpeg reports errors through
// longjmp (vision/jpeg_error.h); the functions that call it keep no C++ objects with
// destructors alive across the jump (buffers are allocated before setjmp).
#include "inspect/jpeg_io.h"

#include <vector>

#include "mmfuse/error.h"
#include "vision/jpeg_error.h"

namespace mmfuse::inspect {

namespace {

// Reads the header and picks the scale; 0 on success.
int read_header(jpeg_decompress_struct* cinfo, JpegErrorManager* err, const uint8_t* data,
                size_t size, int min_w, int min_h) {
  if (setjmp(err->jump)) return 1;
  jpeg_mem_src(cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(cinfo, TRUE);
  if (cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK) return 2;
  cinfo->out_color_space = JCS_RGB;
  unsigned denom = 8;
  while (denom > 1 && (static_cast<int>(cinfo->image_width / denom) < min_w ||
                       static_cast<int>(cinfo->image_height / denom) < min_h))
    denom /= 2;
  cinfo->scale_num = 1;
  cinfo->scale_denom = denom;
  jpeg_calc_output_dimensions(cinfo);
  return 0;
}

int read_pixels(jpeg_decompress_struct* cinfo, JpegErrorManager* err, uint8_t* out, size_t stride) {
  if (setjmp(err->jump)) return 1;
  jpeg_start_decompress(cinfo);
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW row = out + stride * cinfo->output_scanline;
    jpeg_read_scanlines(cinfo, &row, 1);
  }
  jpeg_finish_decompress(cinfo);
  return 0;
}

}  // namespace

bool is_jpeg(const uint8_t* data, size_t size) {
  return size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;
}

ScaledJpeg decode_jpeg_scaled(const uint8_t* data, size_t size, const std::string& name,
                              int min_width, int min_height, const DecodeLimits& limits) {
  MMFUSE_CHECK(is_jpeg(data, size), bad_input, "image '" + name + "': not a JPEG file");
  jpeg_decompress_struct cinfo;
  // Warnings are corrupt or truncated data: counted and remembered, so that the
  // photo can be refused (a half-grey frame from a camera still writing the file
  // would otherwise show up as a huge defect).
  JpegErrorManager err;
  cinfo.err = init_jpeg_error_manager(&err, false);
  jpeg_create_decompress(&cinfo);
  const int header = read_header(&cinfo, &err, data, size, min_width, min_height);
  if (header != 0) {
    jpeg_destroy_decompress(&cinfo);
    if (header == 1) throw_error(ErrorKind::bad_input, "image '" + name + "': " + err.message);
    // CMYK: rare from cameras; the full decoder converts it as PIL does.
    ScaledJpeg full;
    full.image = decode_image_memory(data, size, name, limits);
    full.full_width = full.image.width;
    full.full_height = full.image.height;
    return full;
  }
  ScaledJpeg out;
  out.full_width = static_cast<int>(cinfo.image_width);
  out.full_height = static_cast<int>(cinfo.image_height);
  const int64_t pixels = static_cast<int64_t>(cinfo.image_width) * cinfo.image_height;
  if (pixels <= 0 || pixels > limits.max_pixels) {
    jpeg_destroy_decompress(&cinfo);
    throw_error(ErrorKind::bad_input, "image '" + name + "': " + std::to_string(cinfo.image_width) +
                                          "x" + std::to_string(cinfo.image_height) +
                                          " is empty or too large");
  }
  out.image.width = static_cast<int>(cinfo.output_width);
  out.image.height = static_cast<int>(cinfo.output_height);
  try {
    out.image.rgb.resize(static_cast<size_t>(cinfo.output_width) * cinfo.output_height * 3);
  } catch (...) {
    jpeg_destroy_decompress(&cinfo);
    throw;
  }
  const int rc =
      read_pixels(&cinfo, &err, out.image.rgb.data(), static_cast<size_t>(cinfo.output_width) * 3);
  const long warnings = err.pub.num_warnings;
  jpeg_destroy_decompress(&cinfo);
  MMFUSE_CHECK(rc == 0, bad_input, "image '" + name + "': " + err.message);
  MMFUSE_CHECK(warnings == 0, bad_input,
               "image '" + name + "': corrupt or truncated JPEG (" + err.message + ")");
  return out;
}

}  // namespace mmfuse::inspect
