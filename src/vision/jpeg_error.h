// The libjpeg error manager shared by mmfuse's JPEG decoders and encoder. A
// fatal error formats libjpeg's message into `message` and longjmps to `jump`
// (set by the small step function that called libjpeg, which holds no C++
// objects with destructors). Warnings (corrupt or truncated data) are counted
// in pub.num_warnings with the first one's text kept in `message`; while
// eof_is_fatal, running out of data is fatal instead ("image file is truncated").
// Nothing is printed.
#pragma once

#include <csetjmp>
#include <cstdio>

// clang-format off
#include <jpeglib.h>
// clang-format on

namespace mmfuse {

struct JpegErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  bool eof_is_fatal;
  char message[JMSG_LENGTH_MAX];
};

// Fills `err` (eof_is_fatal as given, empty message) and returns &err->pub, for
// cinfo.err before jpeg_create_(de)compress.
jpeg_error_mgr* init_jpeg_error_manager(JpegErrorManager* err, bool eof_is_fatal);

}  // namespace mmfuse
