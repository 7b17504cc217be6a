// libpng callbacks shared by mmfuse's PNG readers and writer: reading from a
// memory buffer, writing to a std::string, and recording libpng's error message for the caller's
// own message before longjmp-ing back to the setjmp in the calling step.
#pragma once

#include <png.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace mmfuse {

// Install with png_set_read_fn(png, &source, png_read_from_memory).
struct PngMemorySource {
  const uint8_t* data;
  size_t size;
  size_t pos;
};
void png_read_from_memory(png_structp png, png_bytep out, size_t n);

// Install with png_set_write_fn(png, &string, png_write_to_string, png_flush_nothing).
void png_write_to_string(png_structp png, png_bytep data, size_t n);
void png_flush_nothing(png_structp png);

// Install with png_create_read_struct(..., &message, png_record_error, png_ignore_warning).
struct PngErrorMessage {
  char text[256];
};
void png_record_error(png_structp png, png_const_charp msg);
void png_ignore_warning(png_structp png, png_const_charp msg);

}  // namespace mmfuse
