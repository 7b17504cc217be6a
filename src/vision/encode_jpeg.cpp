// JPEG encoding with libjpeg-turbo (see image_encode.h). libjpeg reports errors
// through longjmp (vision/jpeg_error.h); the step that calls it keeps no C++
// objects with destructors alive across the jump.
#include <cstdlib>

#include "mmfuse/error.h"
#include "vision/image_encode.h"
#include "vision/jpeg_error.h"

namespace mmfuse {

namespace {

int write_all(jpeg_compress_struct* cinfo, JpegErrorManager* err, const Image& im, int quality,
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

std::string encode_jpeg(const Image& image, int quality) {
  MMFUSE_ASSERT(image.width > 0 && image.height > 0 &&
                image.rgb.size() == static_cast<size_t>(image.width) * image.height * 3);
  jpeg_compress_struct cinfo;
  JpegErrorManager err;
  cinfo.err = init_jpeg_error_manager(&err, false);
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

}  // namespace mmfuse
