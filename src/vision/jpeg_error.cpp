// The shared libjpeg error manager (see jpeg_error.h).
#include "vision/jpeg_error.h"

// clang-format off
#include <jerror.h>
// clang-format on

namespace mmfuse {

namespace {

void on_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void on_emit_message(j_common_ptr cinfo, int msg_level) {
  if (msg_level >= 0) return;  // trace messages
  auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  if (cinfo->err->msg_code == JWRN_JPEG_EOF && err->eof_is_fatal) {
    std::snprintf(err->message, sizeof err->message, "image file is truncated");
    std::longjmp(err->jump, 1);
  }
  if (err->pub.num_warnings++ == 0) (*cinfo->err->format_message)(cinfo, err->message);
}

void on_output_message(j_common_ptr) {}

}  // namespace

jpeg_error_mgr* init_jpeg_error_manager(JpegErrorManager* err, bool eof_is_fatal) {
  jpeg_error_mgr* pub = jpeg_std_error(&err->pub);
  pub->error_exit = on_error_exit;
  pub->emit_message = on_emit_message;
  pub->output_message = on_output_message;
  err->eof_is_fatal = eof_is_fatal;
  err->message[0] = '\0';
  return pub;
}

}  // namespace mmfuse
