// WebP decoding with libwebp. PIL 9.4 decodes WebP through WebPAnimDecoder in
// MODE_RGBA (non-premultiplied); for a still image that is the frame as
// WebPDecode gives it in MODE_RGBA, and convert('RGB') drops the alpha.
// Animated WebP needs libwebpdemux and is reported as unsupported.
#include <webp/decode.h>

#include <vector>

#include "vision/decoders.h"

namespace mmfuse::detail {

namespace {

const char* status_text(VP8StatusCode status) {
  switch (status) {
    case VP8_STATUS_OK: return "ok";
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "image file is truncated";
  }
  return "unknown error";
}

struct WebPConfigGuard {
  WebPDecoderConfig* config;
  ~WebPConfigGuard() { WebPFreeDecBuffer(&config->output); }
};

}  // namespace

Image decode_webp(const uint8_t* data, size_t size, const std::string& name,
                  const DecodeLimits& limits) {
  WebPDecoderConfig config;
  if (!WebPInitDecoderConfig(&config)) {
    image_error(ErrorKind::internal, name, "libwebp version mismatch");
  }
  WebPConfigGuard guard{&config};
  VP8StatusCode status = WebPGetFeatures(data, size, &config.input);
  if (status != VP8_STATUS_OK) {
    image_error(ErrorKind::bad_input, name, std::string("corrupt WebP: ") + status_text(status));
  }
  if (config.input.has_animation) {
    image_error(ErrorKind::unsupported, name, "animated WebP is not supported");
  }
  check_image_size(config.input.width, config.input.height, name, limits);
  const int w = config.input.width;
  const int h = config.input.height;

  std::vector<uint8_t> rgba(static_cast<size_t>(w) * static_cast<size_t>(h) * 4);
  config.output.colorspace = MODE_RGBA;
  config.output.is_external_memory = 1;
  config.output.u.RGBA.rgba = rgba.data();
  config.output.u.RGBA.stride = w * 4;
  config.output.u.RGBA.size = rgba.size();
  status = WebPDecode(data, size, &config);
  if (status != VP8_STATUS_OK) {
    image_error(ErrorKind::bad_input, name, std::string("corrupt WebP: ") + status_text(status));
  }
  if (config.output.width != w || config.output.height != h) {
    image_error(ErrorKind::internal, name, "unexpected WebP output size");
  }

  Image img = make_image(w, h);
  const size_t n = static_cast<size_t>(w) * static_cast<size_t>(h);
  for (size_t i = 0; i < n; ++i) {
    img.rgb[3 * i] = rgba[4 * i];
    img.rgb[3 * i + 1] = rgba[4 * i + 1];
    img.rgb[3 * i + 2] = rgba[4 * i + 2];
  }
  return img;
}

}  // namespace mmfuse::detail
