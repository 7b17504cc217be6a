// preprocessor_config.json parsing and the CLIP preprocessing pipeline, in
// Hugging Face's order and arithmetic (transformers 4.44 image_transforms):
//   resize (PIL, on uint8) -> center_crop (uint8, zero padding) ->
//   rescale: float32(float64(u8) * rescale_factor) ->
//   normalize: (x - float32(mean)) / float32(std) in float32 -> CHW.
#include "vision/image_processor.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mmfuse/error.h"
#include "vision/pil_resize.h"

namespace mmfuse {

namespace {

using nlohmann::json;

[[noreturn]] void config_error(ErrorKind kind, const std::string& file, const std::string& field,
                               const std::string& what) {
  throw_error(kind, "preprocessor config '" + file + "': field '" + field + "': " + what);
}

bool has(const json& j, const char* key) {
  return j.contains(key) && !j.at(key).is_null();
}

bool get_bool(const json& j, const char* key, bool def, const std::string& file) {
  if (!has(j, key)) return def;
  const json& v = j.at(key);
  if (!v.is_boolean()) config_error(ErrorKind::bad_input, file, key, "expected true or false");
  return v.get<bool>();
}

int get_positive_int(const json& v, const std::string& field, const std::string& file) {
  if (!v.is_number_integer() &&
      !(v.is_number_float() && std::floor(v.get<double>()) == v.get<double>())) {
    config_error(ErrorKind::bad_input, file, field, "expected an integer");
  }
  const double d = v.get<double>();
  if (d < 1 || d > 1e6)
    config_error(ErrorKind::bad_input, file, field, "expected a size in 1..1000000");
  return static_cast<int>(d);
}

// HF's `size` / `crop_size`: an int, [height, width], or a dict.
struct SizeSpec {
  int shortest_edge = 0;
  int height = 0, width = 0;
};

SizeSpec parse_size(const json& v, const char* field, bool int_is_square, const std::string& file) {
  SizeSpec s;
  if (v.is_number()) {
    const int n = get_positive_int(v, field, file);
    if (int_is_square) {
      s.height = s.width = n;
    } else {
      s.shortest_edge = n;
    }
  } else if (v.is_array()) {
    if (v.size() != 2) config_error(ErrorKind::bad_input, file, field, "expected [height, width]");
    s.height = get_positive_int(v[0], std::string(field) + "[0]", file);
    s.width = get_positive_int(v[1], std::string(field) + "[1]", file);
  } else if (v.is_object()) {
    if (has(v, "shortest_edge")) {
      if (has(v, "longest_edge")) {
        config_error(ErrorKind::unsupported, file, field, "'longest_edge' is not supported");
      }
      s.shortest_edge =
          get_positive_int(v.at("shortest_edge"), std::string(field) + ".shortest_edge", file);
    } else if (has(v, "height") && has(v, "width")) {
      s.height = get_positive_int(v.at("height"), std::string(field) + ".height", file);
      s.width = get_positive_int(v.at("width"), std::string(field) + ".width", file);
    } else {
      config_error(ErrorKind::unsupported, file, field,
                   "expected {\"shortest_edge\": N} or {\"height\": H, \"width\": W}");
    }
  } else {
    config_error(ErrorKind::bad_input, file, field, "expected an integer, a list or an object");
  }
  return s;
}

void get_triple(const json& j, const char* key, float* out, const std::string& file) {
  if (!has(j, key)) return;
  const json& v = j.at(key);
  if (v.is_number()) {
    out[0] = out[1] = out[2] = static_cast<float>(v.get<double>());
    return;
  }
  if (!v.is_array() || v.size() != 3) {
    config_error(ErrorKind::bad_input, file, key, "expected a list of 3 numbers");
  }
  for (size_t i = 0; i < 3; ++i) {
    if (!v[i].is_number())
      config_error(ErrorKind::bad_input, file, key, "expected a list of 3 numbers");
    out[i] = static_cast<float>(v[i].get<double>());
  }
}

void validate(const ImageProcessorConfig& c, const std::string& where) {
  const auto fail = [&](ErrorKind kind, const std::string& what) {
    throw_error(kind, where + what);
  };
  if (c.do_resize) {
    if (c.resample != kPilBilinear && c.resample != kPilBicubic) {
      fail(ErrorKind::unsupported, "field 'resample': filter " + std::to_string(c.resample) +
                                       " is not supported (2 bilinear and 3 bicubic are)");
    }
    if (!(c.resize_h > 0 && c.resize_w > 0) && c.shortest_edge <= 0) {
      fail(ErrorKind::bad_input, "field 'size': no valid size");
    }
  }
  if (c.do_center_crop && (c.crop_h <= 0 || c.crop_w <= 0)) {
    fail(ErrorKind::bad_input, "field 'crop_size': no valid size");
  }
  if (c.out_height() <= 0 || c.out_width() <= 0) {
    fail(ErrorKind::unsupported,
         "the output size depends on the image (needs do_center_crop, or do_resize with an "
         "exact {height, width} size)");
  }
  if (c.do_rescale && !std::isfinite(c.rescale_factor)) {
    fail(ErrorKind::bad_input, "field 'rescale_factor': not a finite number");
  }
}

// Python floor division for the crop offsets (they can be negative).
int floor_div2(int v) {
  return v >= 0 ? v / 2 : -((-v + 1) / 2);
}

}  // namespace

ImageProcessorConfig ImageProcessorConfig::from_file(const std::filesystem::path& path) {
  const std::string file = path.string();
  std::ifstream in(path);
  if (!in)
    throw_error(ErrorKind::not_found, "preprocessor config '" + file + "': cannot open file");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw_error(ErrorKind::bad_input,
                "preprocessor config '" + file + "': invalid JSON: " + e.what());
  }
  if (!j.is_object()) {
    throw_error(ErrorKind::bad_input, "preprocessor config '" + file + "': expected a JSON object");
  }

  ImageProcessorConfig c;
  try {
    // BlipImageProcessor (BLIP, BLIP-2) resizes to exactly size.height x
    // size.width (default 384 x 384; an int is a square) and has no crop step:
    // it ignores do_center_crop / crop_size if a file carries them.
    const bool blip = has(j, "image_processor_type") && j.at("image_processor_type").is_string() &&
                      j.at("image_processor_type").get<std::string>() == "BlipImageProcessor";
    if (blip) {
      c.shortest_edge = 0;
      c.resize_h = c.resize_w = 384;
    }
    c.do_resize = get_bool(j, "do_resize", c.do_resize, file);
    if (has(j, "size")) {
      const SizeSpec s = parse_size(j.at("size"), "size", /*int_is_square=*/blip, file);
      if (blip && s.shortest_edge > 0) {
        config_error(ErrorKind::unsupported, file, "size",
                     "BlipImageProcessor needs {\"height\": H, \"width\": W}");
      }
      if (s.shortest_edge > 0) {
        c.shortest_edge = s.shortest_edge;
        c.resize_h = c.resize_w = 0;
      } else {
        c.shortest_edge = 0;
        c.resize_h = s.height;
        c.resize_w = s.width;
      }
    }
    if (has(j, "resample")) {
      const json& v = j.at("resample");
      if (!v.is_number_integer())
        config_error(ErrorKind::bad_input, file, "resample", "expected an integer");
      c.resample = v.get<int>();
    }
    c.do_center_crop = !blip && get_bool(j, "do_center_crop", c.do_center_crop, file);
    if (!blip && has(j, "crop_size")) {
      const SizeSpec s = parse_size(j.at("crop_size"), "crop_size", /*int_is_square=*/true, file);
      if (s.shortest_edge > 0) {
        config_error(ErrorKind::bad_input, file, "crop_size",
                     "expected {\"height\": H, \"width\": W}");
      }
      c.crop_h = s.height;
      c.crop_w = s.width;
    }
    c.do_rescale = get_bool(j, "do_rescale", c.do_rescale, file);
    if (has(j, "rescale_factor")) {
      const json& v = j.at("rescale_factor");
      if (!v.is_number())
        config_error(ErrorKind::bad_input, file, "rescale_factor", "expected a number");
      c.rescale_factor = v.get<double>();
    }
    c.do_normalize = get_bool(j, "do_normalize", c.do_normalize, file);
    get_triple(j, "image_mean", c.mean, file);
    get_triple(j, "image_std", c.std, file);
    c.do_convert_rgb = get_bool(j, "do_convert_rgb", c.do_convert_rgb, file);
  } catch (const json::exception& e) {
    throw_error(ErrorKind::bad_input, "preprocessor config '" + file + "': " + e.what());
  }
  validate(c, "preprocessor config '" + file + "': ");
  return c;
}

int ImageProcessorConfig::out_height() const {
  if (do_center_crop) return crop_h;
  if (do_resize && resize_h > 0 && resize_w > 0) return resize_h;
  return 0;
}

int ImageProcessorConfig::out_width() const {
  if (do_center_crop) return crop_w;
  if (do_resize && resize_h > 0 && resize_w > 0) return resize_w;
  return 0;
}

void preprocess_image(const Image& img, const ImageProcessorConfig& cfg, float* out) {
  validate(cfg, "image preprocessing: ");
  MMFUSE_CHECK(img.width > 0 && img.height > 0 &&
                   img.rgb.size() == static_cast<size_t>(img.width) * img.height * 3,
               bad_input, "image preprocessing: invalid image");

  // 1. Resize (HF get_resize_output_image_size).
  Image resized_storage;
  const Image* cur = &img;
  if (cfg.do_resize) {
    int new_w = 0, new_h = 0;
    if (cfg.resize_h > 0 && cfg.resize_w > 0) {
      new_h = cfg.resize_h;
      new_w = cfg.resize_w;
    } else {
      const bool portrait = img.width <= img.height;
      const int64_t short_side = portrait ? img.width : img.height;
      const int64_t long_side = portrait ? img.height : img.width;
      const int new_short = cfg.shortest_edge;
      // Python: int(size * long / short): exact integer product, float64 division, truncation.
      const double new_long_d =
          static_cast<double>(int64_t{new_short} * long_side) / static_cast<double>(short_side);
      MMFUSE_CHECK(new_long_d < 1e6, bad_input,
                   "image preprocessing: resized image would be too large (" +
                       std::to_string(img.width) + "x" + std::to_string(img.height) + ")");
      const int new_long = static_cast<int>(new_long_d);
      MMFUSE_CHECK(new_long > 0, bad_input,
                   "image preprocessing: image too thin to resize (" + std::to_string(img.width) +
                       "x" + std::to_string(img.height) + ")");
      new_w = portrait ? new_short : new_long;
      new_h = portrait ? new_long : new_short;
    }
    if (new_w != img.width || new_h != img.height) {
      resized_storage = pil_resize(img, new_w, new_h, cfg.resample);
      cur = &resized_storage;
    }
  }

  // 2. Centre crop (HF center_crop: floor division; zero padding when the crop
  //    is larger than the image).
  const int H = cur->height, W = cur->width;
  int out_h = H, out_w = W, top = 0, left = 0;
  if (cfg.do_center_crop) {
    out_h = cfg.crop_h;
    out_w = cfg.crop_w;
    top = floor_div2(H - out_h);
    left = floor_div2(W - out_w);
  }
  MMFUSE_CHECK(out_h == cfg.out_height() && out_w == cfg.out_width(), internal,
               "image preprocessing: output size mismatch");

  // 3-4. Rescale and normalise, CHW.
  const size_t plane = static_cast<size_t>(out_h) * static_cast<size_t>(out_w);
  const double factor = cfg.rescale_factor;
  float mean[3], stdv[3];
  for (int c = 0; c < 3; ++c) {
    mean[c] = cfg.mean[c];
    stdv[c] = cfg.std[c];
  }
  for (int y = 0; y < out_h; ++y) {
    const int sy = y + top;
    for (int x = 0; x < out_w; ++x) {
      const int sx = x + left;
      const bool inside = sy >= 0 && sy < H && sx >= 0 && sx < W;
      for (int c = 0; c < 3; ++c) {
        const uint8_t u =
            inside ? cur->rgb[(static_cast<size_t>(sy) * W + static_cast<size_t>(sx)) * 3 + c] : 0;
        float v = cfg.do_rescale ? static_cast<float>(static_cast<double>(u) * factor)
                                 : static_cast<float>(u);
        if (cfg.do_normalize) v = (v - mean[c]) / stdv[c];
        out[static_cast<size_t>(c) * plane + static_cast<size_t>(y) * out_w + x] = v;
      }
    }
  }
}

}  // namespace mmfuse
