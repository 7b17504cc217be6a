// The libpng callbacks of png_memory.h.
#include "vision/png_memory.h"

#include <cstdio>
#include <cstring>

namespace mmfuse {

void png_read_from_memory(png_structp png, png_bytep out, size_t n) {
  auto* src = static_cast<PngMemorySource*>(png_get_io_ptr(png));
  if (n > src->size - src->pos) png_error(png, "image file is truncated");
  std::memcpy(out, src->data + src->pos, n);
  src->pos += n;
}

void png_write_to_string(png_structp png, png_bytep data, size_t n) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<const char*>(data), n);
}

void png_flush_nothing(png_structp) {}

void png_record_error(png_structp png, png_const_charp msg) {
  auto* message = static_cast<PngErrorMessage*>(png_get_error_ptr(png));
  if (message != nullptr) std::snprintf(message->text, sizeof message->text, "%s", msg);
  png_longjmp(png, 1);
}

void png_ignore_warning(png_structp, png_const_charp) {}

}  // namespace mmfuse
