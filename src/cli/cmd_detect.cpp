// `mmfuse detect`: object detection with an Ultralytics YOLO ONNX export
// (YOLOv8-style or YOLOv5-style outputs), Ultralytics' pre-processing and NMS.
// Prints one result per image (--json: one JSON object per line); --save-dir
// writes annotated JPEGs. All images are processed before anything is printed
// or written, so a bad image (exit 2) leaves no partial output.
#include <cstdio>
#include <filesystem>
#include <set>

#include "cli/commands.h"
#include "cli/common.h"
#include "detect/detection_json.h"
#include "io/atomic_file.h"
#include "mmfuse/error.h"
#include "models/yolo.h"
#include "vision/draw_boxes.h"
#include "vision/image_encode.h"

namespace mmfuse::cli {

namespace {

// "--classes 0,2" or names ("scratch,dent"); ids as Ultralytics' `classes`.
std::vector<int> parse_classes(const std::string& text, const std::vector<std::string>& names) {
  std::vector<int> ids;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    MMFUSE_CHECK(!item.empty(), bad_input, "--classes: empty item in '" + text + "'");
    const bool numeric = item.find_first_not_of("0123456789") == std::string::npos && item.size() < 9;
    int id = -1;
    if (numeric) {
      id = std::stoi(item);
    } else {
      for (size_t k = 0; k < names.size(); ++k)
        if (names[k] == item) id = static_cast<int>(k);
    }
    MMFUSE_CHECK(id >= 0 && id < static_cast<int>(names.size()), bad_input,
                 "--classes: '" + item + "' is not a class of the model (0.." + std::to_string(names.size() - 1) + ")");
    ids.push_back(id);
    start = end + 1;
  }
  return ids;
}

std::pair<int, int> parse_imgsz_option(const std::string& text) {
  std::string t = text;
  for (char& c : t)
    if (c == 'x') c = ',';
  return with_flag("--imgsz", [&] { return parse_yolo_imgsz(t.find(',') != std::string::npos ? "[" + t + "]" : t, "imgsz"); });
}

}  // namespace

void register_detect(CLI::App& app) {
  struct Options {
    std::string model, imgsz, classes, save_dir;
    std::vector<std::string> images;
    float conf = 0.25f, iou = 0.7f;
    int max_det = 300, threads = 0, bench = 0;
    bool agnostic = false, json = false;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("detect", "Detect objects with an Ultralytics YOLO ONNX export");
  cmd->add_option("--model", opt->model, "YOLO .onnx file (yolo export format=onnx)")->required();
  cmd->add_option("--image", opt->images, "Image file (repeatable)")->required();
  cmd->add_option("--conf", opt->conf, "Confidence threshold (default 0.25)");
  cmd->add_option("--iou", opt->iou, "NMS IoU threshold (default 0.7)");
  cmd->add_option("--imgsz", opt->imgsz, "Network input size N or H,W (default: the model's)");
  cmd->add_option("--classes", opt->classes, "Keep only these classes: ids or names, comma-separated");
  cmd->add_flag("--agnostic", opt->agnostic, "Class-agnostic NMS");
  cmd->add_option("--max-det", opt->max_det, "At most this many detections per image (default 300)");
  cmd->add_flag("--json", opt->json, "One JSON object per image per line");
  cmd->add_option("--save-dir", opt->save_dir, "Write annotated JPEGs into this folder");
  cmd->add_option("--bench", opt->bench,
                  "Instead of detections, print one JSON line of ms per image (decode, letterbox, network, NMS, "
                  "total) over this many timed runs of every image, after one untimed run")
      ->check(CLI::Range(1, 100000));
  add_threads_option(cmd, &opt->threads);
  cmd->callback([opt] {
    apply_threads(opt->threads);
    YoloOpenOptions open_options;
    open_options.pool = command_pool();
    auto detector = YoloDetector::open(opt->model, open_options);
    DetectOptions d;
    d.conf = opt->conf;
    d.iou = opt->iou;
    d.max_det = opt->max_det;
    d.agnostic = opt->agnostic;
    MMFUSE_CHECK(opt->conf >= 0 && opt->conf <= 1, bad_input, "--conf: must be in [0, 1]");
    MMFUSE_CHECK(opt->iou >= 0 && opt->iou <= 1, bad_input, "--iou: must be in [0, 1]");
    MMFUSE_CHECK(opt->max_det >= 0, bad_input, "--max-det: must be >= 0");
    if (!opt->classes.empty()) d.classes = parse_classes(opt->classes, detector->class_names());
    if (!opt->imgsz.empty()) std::tie(d.imgsz_h, d.imgsz_w) = parse_imgsz_option(opt->imgsz);

    if (opt->bench > 0) {
      DetectTimings sum, t;
      double decode_ms = 0, total_ms = 0;
      for (const std::string& path : opt->images) detector->detect(decode_image_file(path), d);  // warm-up
      for (int run = 0; run < opt->bench; ++run)
        for (const std::string& path : opt->images) {
          const double t0 = now_ms();
          const Image image = decode_image_file(path);
          decode_ms += now_ms() - t0;
          detector->detect(image, d, &t);
          total_ms += now_ms() - t0;
          sum.letterbox_ms += t.letterbox_ms;
          sum.network_ms += t.network_ms;
          sum.nms_ms += t.nms_ms;
        }
      const double n = static_cast<double>(opt->bench) * opt->images.size();
      print_json({{"model", opt->model},
                  {"threads", command_pool()->size()},
                  {"input", {detector->input_height(), detector->input_width()}},
                  {"runs", n},
                  {"ms_per_image",
                   {{"decode", decode_ms / n},
                    {"letterbox", sum.letterbox_ms / n},
                    {"network", sum.network_ms / n},
                    {"nms", sum.nms_ms / n},
                    {"total", total_ms / n}}},
                  {"plan", detector->summary()}});
      return;
    }
    struct Result {
      std::string text;  // what is printed
      std::filesystem::path save_path;
      std::string jpeg;
    };
    std::vector<Result> results;
    std::set<std::string> used_names;
    for (const std::string& path : opt->images) {
      Image image = decode_image_file(path);
      const std::vector<Detection> found = with_flag("--image " + path, [&] { return detector->detect(image, d); });
      Result r;
      if (opt->json) {
        r.text = Json{{"image", path}, {"detections", detections_to_json(found)}}.dump(-1, ' ', false, Json::error_handler_t::replace);
      } else {
        r.text = path + ": " + std::to_string(found.size()) + " detection" + (found.size() == 1 ? "" : "s");
        for (const Detection& x : found) {
          char line[256];
          std::snprintf(line, sizeof line, "\n  %-16s %.3f  [%.1f, %.1f, %.1f, %.1f]", x.class_name.c_str(), x.score,
                        x.x1, x.y1, x.x2, x.y2);
          r.text += line;
        }
      }
      if (!opt->save_dir.empty()) {
        std::vector<LabeledBox> boxes;
        for (const Detection& x : found) {
          char label[160];
          std::snprintf(label, sizeof label, "%s %.2f", x.class_name.c_str(), x.score);
          boxes.push_back({x.x1, x.y1, x.x2, x.y2, label, x.class_id});
        }
        draw_boxes(&image, boxes);
        std::string name = std::filesystem::path(path).stem().string();
        for (int k = 2; used_names.count(name); ++k) name = std::filesystem::path(path).stem().string() + "_" + std::to_string(k);
        used_names.insert(name);
        r.save_path = std::filesystem::path(opt->save_dir) / (name + ".jpg");
        r.jpeg = encode_jpeg(image, 90);
      }
      results.push_back(std::move(r));
    }
    if (!opt->save_dir.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(opt->save_dir, ec);
      MMFUSE_CHECK(!ec && std::filesystem::is_directory(opt->save_dir), bad_input,
                   "--save-dir: cannot create " + opt->save_dir + (ec ? ": " + ec.message() : ""));
      for (const Result& r : results) write_file_atomic(r.save_path, r.jpeg);
    }
    for (const Result& r : results) {
      std::fputs(r.text.c_str(), stdout);
      std::fputc('\n', stdout);
    }
    std::fflush(stdout);
  });
}

}  // namespace mmfuse::cli
