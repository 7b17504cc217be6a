// libjpeg decode-with-scaling and encode (see jpeg_io.h). libjpeg reports
// errors through longjmp; the functions that call it keep no C++ objects with
// destructors alive across the jump (buffers are allocated before setjmp).
#include "inspect/jpeg_io.h"

#include <jpeglib.h>

#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "mmfuse/error.h"

namespace mmfuse::inspect {

namespace {

struct ErrorMgr {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorMgr*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings (level -1) are corrupt or truncated data: counted and remembered,
// so that the decoder can refuse the photo (a half-grey frame from a camera
// still writing the file would otherwise show up as a huge defect).
void on_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;
  auto* err = reinterpret_cast<ErrorMgr*>(cinfo->err);
  if (err->pub.num_warnings++ == 0) (*cinfo->err->format_message)(cinfo, err->message);
}

void quiet(j_common_ptr, int) {}

// Reads the header and picks the scale; 0 on success.
int read_header(jpeg_decompress_struct* cinfo, ErrorMgr* err, const uint8_t* data, size_t size,
                int min_w, int min_h) {
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

int read_pixels(jpeg_decompress_struct* cinfo, ErrorMgr* err, uint8_t* out, size_t stride) {
  if (setjmp(err->jump)) return 1;
  jpeg_start_decompress(cinfo);
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW row = out + stride * cinfo->output_scanline;
    jpeg_read_scanlines(cinfo, &row, 1);
  }
  jpeg_finish_decompress(cinfo);
  return 0;
}

int write_all(jpeg_compress_struct* cinfo, ErrorMgr* err, const Image& im, int quality,
              unsigned char** buf, unsigned long* len) {
  if (setjmp(err->jump)) return 1;
  jpeg_mem_dest(cinfo, buf, len);
  cinfo->image_width = static_cast<JDIMENSION>(im.width);
  cinfo->image_height = static_cast<JDIMENSION>(im.height);
  cinfo->input_components = 3;
  cinfo->in_color_space = JCS_RGB;
  jpeg_set_defaults(cinfo);
  jpeg_set_quality(cinfo, quality, TRUE);
  jpeg_start_compress(cinfo, TRUE);
  while (cinfo->next_scanline < cinfo->image_height) {
    JSAMPROW row = const_cast<uint8_t*>(im.rgb.data()) +
                   static_cast<size_t>(cinfo->next_scanline) * im.width * 3;
    jpeg_write_scanlines(cinfo, &row, 1);
  }
  jpeg_finish_compress(cinfo);
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
  ErrorMgr err;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = error_exit;
  err.pub.emit_message = on_message;
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

std::string encode_jpeg(const Image& image, int quality) {
  MMFUSE_ASSERT(image.width > 0 && image.height > 0 &&
                image.rgb.size() == static_cast<size_t>(image.width) * image.height * 3);
  jpeg_compress_struct cinfo;
  ErrorMgr err;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = error_exit;
  err.pub.emit_message = quiet;
  jpeg_create_compress(&cinfo);
  unsigned char* buf = nullptr;
  unsigned long len = 0;
  const int rc = write_all(&cinfo, &err, image, quality, &buf, &len);
  jpeg_destroy_compress(&cinfo);
  std::string out;
  if (rc == 0) out.assign(reinterpret_cast<const char*>(buf), len);
  std::free(buf);
  MMFUSE_CHECK(rc == 0, internal, std::string("JPEG encode failed: ") + err.message);
  return out;
}

}  // namespace mmfuse::inspect
