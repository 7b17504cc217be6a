// POST /v1/detect: objects in one image by a served YOLO detector, in the shape
// `mmfuse detect --json` prints. The image comes as multipart/form-data (file
// field "image", options as form fields) or as JSON with a data: URL.
#include <algorithm>

#include "detect/detection_json.h"
#include "server/http_util.h"
#include "server/server_context.h"

namespace mmfuse::server {

namespace {

struct DetectRequest {
  std::string model;
  std::string image_name = "upload";
  std::vector<uint8_t> image_bytes;
  DetectOptions options;
  std::vector<std::string> class_names;  // "classes" given by name, resolved per model
};

double number_in(const Json& v, const std::string& field, double lo, double hi) {
  MMFUSE_CHECK(v.is_number(), bad_input, field + ": expected a number");
  const double x = v.get<double>();
  MMFUSE_CHECK(x >= lo && x <= hi, bad_input,
               field + ": must be in [" + Json(lo).dump() + ", " + Json(hi).dump() + "]");
  return x;
}

// "classes": ids or names, as a list (JSON) or comma-separated (form).
void add_classes(const Json& v, DetectRequest& r) {
  MMFUSE_CHECK(v.is_array(), bad_input, "classes: expected a list of class ids or names");
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i].is_number_integer()) r.options.classes.push_back(v[i].get<int>());
    else if (v[i].is_string()) r.class_names.push_back(v[i].get<std::string>());
    else throw_error(ErrorKind::bad_input, "classes[" + std::to_string(i) + "]: expected an id or a name");
  }
}

// The options shared by both encodings, from a JSON object of already-typed values.
void read_options(const Json& body, DetectRequest& r) {
  if (body.contains("model") && !body["model"].is_null()) {
    MMFUSE_CHECK(body["model"].is_string(), bad_input, "model: expected a string");
    r.model = body["model"].get<std::string>();
  }
  if (body.contains("conf")) r.options.conf = static_cast<float>(number_in(body["conf"], "conf", 0, 1));
  if (body.contains("iou")) r.options.iou = static_cast<float>(number_in(body["iou"], "iou", 0, 1));
  if (body.contains("max_det"))
    r.options.max_det = static_cast<int>(number_in(body["max_det"], "max_det", 1, 30000));
  if (body.contains("imgsz")) {
    const int s = static_cast<int>(number_in(body["imgsz"], "imgsz", 32, 8192));
    MMFUSE_CHECK(s % 32 == 0, bad_input, "imgsz: must be a multiple of 32");
    r.options.imgsz_h = r.options.imgsz_w = s;
  }
  if (body.contains("agnostic")) {
    MMFUSE_CHECK(body["agnostic"].is_boolean(), bad_input, "agnostic: expected true or false");
    r.options.agnostic = body["agnostic"].get<bool>();
  }
  if (body.contains("classes")) add_classes(body["classes"], r);
}

DetectRequest parse_json_request(const httplib::Request& req) {
  const Json body = parse_json_object(req);
  static const char* known[] = {"model", "image", "conf", "iou", "max_det",
                                "imgsz", "agnostic", "classes"};
  for (const auto& item : body.items()) {
    const std::string& key = item.key();
    MMFUSE_CHECK(std::find_if(std::begin(known), std::end(known),
                              [&key](const char* k) { return key == k; }) != std::end(known),
                 bad_input, key + ": unknown field");
  }
  DetectRequest r;
  read_options(body, r);
  MMFUSE_CHECK(body.contains("image"), bad_input, "image: missing (a data: URL, or {\"url\": ...})");
  const Json& image = body["image"];
  std::string url;
  if (image.is_string()) url = image.get<std::string>();
  else if (image.is_object() && image.contains("url") && image["url"].is_string())
    url = image["url"].get<std::string>();
  else throw_error(ErrorKind::bad_input, "image: expected \"data:image/...;base64,...\" or {\"url\": ...}");
  r.image_bytes = decode_data_url(url, "image");
  return r;
}

// Form fields are text: each is parsed as JSON where the JSON shape expects a
// number or a boolean, and "classes" as a comma-separated list.
DetectRequest parse_form_request(const httplib::Request& req) {
  MMFUSE_CHECK(req.has_file("image"), bad_input, "image: missing file field");
  const auto file = req.get_file_value("image");
  MMFUSE_CHECK(!file.content.empty(), bad_input, "image: empty file");
  Json body = Json::object();
  for (const char* key : {"conf", "iou", "max_det", "imgsz", "agnostic"}) {
    if (!req.has_file(key)) continue;
    const std::string text = req.get_file_value(key).content;
    const Json v = Json::parse(text, nullptr, false);
    MMFUSE_CHECK(!v.is_discarded() && (v.is_number() || v.is_boolean()), bad_input,
                 std::string(key) + ": \"" + text + "\" is not a number or true/false");
    body[key] = v;
  }
  if (req.has_file("model")) body["model"] = req.get_file_value("model").content;
  if (req.has_file("classes")) {
    Json list = Json::array();
    std::string text = req.get_file_value("classes").content;
    size_t start = 0;
    while (start <= text.size()) {
      const size_t comma = std::min(text.find(',', start), text.size());
      const std::string item = text.substr(start, comma - start);
      if (!item.empty()) {
        const bool digits = std::all_of(item.begin(), item.end(), ::isdigit) && item.size() < 9;
        list.push_back(digits ? Json(std::stoi(item)) : Json(item));
      }
      start = comma + 1;
    }
    body["classes"] = list;
  }
  DetectRequest r;
  read_options(body, r);
  r.image_name = file.filename.empty() ? "upload" : file.filename;
  r.image_bytes.assign(file.content.begin(), file.content.end());
  return r;
}

void detect_route(ServerContext& ctx, const httplib::Request& req, httplib::Response& res) {
  DetectRequest r = req.is_multipart_form_data() ? parse_form_request(req) : parse_json_request(req);
  LoadedDetector& d = ctx.detector(r.model);
  const std::vector<std::string>& names = d.model->class_names();
  for (const std::string& name : r.class_names) {
    const auto it = std::find(names.begin(), names.end(), name);
    MMFUSE_CHECK(it != names.end(), bad_input,
                 "classes: the model has no class \"" + name + "\"");
    r.options.classes.push_back(static_cast<int>(it - names.begin()));
  }
  for (int id : r.options.classes)
    MMFUSE_CHECK(id >= 0 && static_cast<size_t>(id) < names.size(), bad_input,
                 "classes: no class id " + std::to_string(id) + " (the model has " +
                     std::to_string(names.size()) + ")");
  const Image image = decode_limited_image(r.image_bytes, "image", ctx.config.limits.max_image_pixels);
  std::vector<Detection> found;
  {
    std::lock_guard<std::mutex> cores(ctx.inference_lock);
    found = d.model->detect(image, r.options);
  }
  send_json(res, {{"model", d.name},
                  {"image", r.image_name},
                  {"width", image.width},
                  {"height", image.height},
                  {"detections", detections_to_json(found)}});
}

}  // namespace

void add_detect_routes(httplib::Server& http, ServerContext& ctx) {
  add_route(http, ctx, "POST", "/v1/detect",
            [&ctx](const httplib::Request& req, httplib::Response& res) {
              detect_route(ctx, req, res);
            });
}

}  // namespace mmfuse::server
