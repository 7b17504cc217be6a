// `mmfuse image ...`: surface-defect anomaly detection without pretrained
// weights (detect/image_anomaly.h): fit on photos of good parts, score new
// photos with heat-maps, and evaluate on the shared magnetic-tile folder.
#include <filesystem>
#include <map>

#include "cli/cmd_image.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "detect/image_anomaly.h"
#include "io/atomic_file.h"
#include "mmfuse/error.h"
#include "tools/box_localisation_eval.h"
#include "tools/image_anomaly_eval.h"
#include "vision/image.h"
#include "vision/image_files.h"

namespace mmfuse::cli {

namespace {

namespace fs = std::filesystem;

// Settings shared by `fit` and `eval`; the defaults are the evaluated ones.
struct FitOptions {
  ImageAnomalyConfig config;
  void add_to(CLI::App* cmd) {
    cmd->add_option("--stride", config.features.stride, "Descriptor grid step in pixels")
        ->check(CLI::Range(2, 64));
    cmd->add_option("--bank-size", config.bank_size, "Patches kept in the memory bank (greedy coreset)")
        ->check(CLI::Range(16, 1 << 20));
    cmd->add_option("--false-alarm-rate", config.false_alarm_rate,
                    "Share of good photos allowed above the threshold (held-out folds)")
        ->check(CLI::Range(0.001, 0.5));
    cmd->add_option("--folds", config.folds, "Folds for the threshold")->check(CLI::Range(2, 50));
    cmd->add_option("--top-k", config.top_k, "Photo score = mean of this many top cells of the map")
        ->check(CLI::Range(1, 1000));
  }
  ImageAnomalyConfig get() const {
    ImageAnomalyConfig c = config;
    c.coreset_candidates = std::max(c.coreset_candidates, c.bank_size);
    return c;
  }
};

void register_fit(CLI::App* image) {
  struct Options {
    std::vector<std::string> images;
    std::string out, backbone;
    FitOptions fit;
    int threads = 0;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = image->add_subcommand("fit", "Fit the anomaly model on photos of good parts only");
  cmd->add_option("--backbone", opt->backbone,
                  "A timm ResNet/WideResNet folder: its layer2+layer3 patch features instead of "
                  "the weight-free texture descriptors (Anomalib's PatchCore recipe)");
  cmd->add_option("--images", opt->images, "Good photos or folders of them (repeatable)")
      ->required()
      ->expected(1, -1);
  cmd->add_option("--out", opt->out, "Model folder to write")->required();
  opt->fit.add_to(cmd);
  add_threads_option(cmd, &opt->threads);
  cmd->callback([opt] {
    apply_threads(opt->threads);
    const double t0 = now_ms();
    const auto files = collect_image_files(opt->images, "--images");
    ImageAnomalyConfig config = opt->fit.get();
    std::shared_ptr<const PatchFeatureSource> source;
    if (!opt->backbone.empty()) {
      source = open_backbone_features(opt->backbone);
      config.features.stride = source->stride();  // the heat-map's cell size
      config.photo_statistics = false;             // texture-descriptor terms
      config.structure_statistics = false;
      config.use_patch_bank();  // the backbone's patches in the memory bank
    }
    const auto grids = source ? patch_features_of_files(*command_pool(), files, *source)
                              : texture_features_of_files(*command_pool(), files, config.features);
    ImageCalibration cal;
    ImageAnomalyModel model = ImageAnomalyModel::fit(*command_pool(), grids, config, &cal);
    model.set_feature_source(source);
    model.save(opt->out);
    double mean = 0, mx = 0;
    for (double s : cal.held_out_scores) {
      mean += s;
      mx = std::max(mx, s);
    }
    mean /= static_cast<double>(cal.held_out_scores.size());
    print_json({{"model", opt->out},
                {"model_type", "image_patchcore"},
                {"images", files.size()},
                {"bank_rows", model.bank_rows()},
                {"dim", model.dim()},
                {"features", source ? source->to_json()["architecture"].get<std::string>() : std::string("texture")},
                {"threshold", model.threshold()},
                {"calibration",
                 {{"rule", "(1 - false_alarm_rate) quantile of held-out good-photo scores"},
                  {"false_alarm_rate", config.false_alarm_rate},
                  {"folds", cal.folds},
                  {"mean", mean},
                  {"max", mx}}},
                {"seconds", (now_ms() - t0) / 1000.0}});
  });
}

void register_detect(CLI::App* image) {
  struct Options {
    std::string model, heatmap_dir;
    std::vector<std::string> images;
    double threshold = std::numeric_limits<double>::quiet_NaN();
    bool json = false;
    int threads = 0;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = image->add_subcommand("detect", "Score photos with a model from `image fit`");
  cmd->add_option("--model", opt->model, "Model folder")->required();
  cmd->add_option("--image", opt->images, "Photos or folders of them (repeatable)")
      ->required()
      ->expected(1, -1);
  cmd->add_option("--heatmap-dir", opt->heatmap_dir,
                  "Write each photo's anomaly heat-map here (8-bit PNG, 128 = threshold)");
  cmd->add_option("--threshold", opt->threshold, "Override the model's threshold");
  cmd->add_flag("--json", opt->json, "JSON output (the only format; accepted for clarity)");
  add_threads_option(cmd, &opt->threads);
  cmd->callback([opt] {
    apply_threads(opt->threads);
    ImageAnomalyModel model = ImageAnomalyModel::load(opt->model);
    if (!std::isnan(opt->threshold)) model.set_threshold(opt->threshold);
    const auto files = collect_image_files(opt->images, "--image");
    // Heat-map names: the photo's stem, made unique within this call.
    std::vector<fs::path> heatmaps(files.size());
    if (!opt->heatmap_dir.empty()) {
      std::error_code ec;
      fs::create_directories(opt->heatmap_dir, ec);
      MMFUSE_CHECK(fs::is_directory(opt->heatmap_dir), bad_input,
                   opt->heatmap_dir + ": cannot create the heat-map folder");
      std::map<std::string, int> used;
      for (size_t i = 0; i < files.size(); ++i) {
        const std::string stem = files[i].stem().string();
        const int n = used[stem]++;
        heatmaps[i] = fs::path(opt->heatmap_dir) / (stem + (n ? "-" + std::to_string(n) : "") + ".png");
      }
    }
    // Score every photo first (one per core): a bad file stops the call
    // before any heat-map is written.
    std::vector<AnomalyMap> maps(files.size());
    std::vector<std::pair<int, int>> sizes(files.size());
    command_pool()->parallel_tasks(files.size(), [&](size_t i, int) {
      const Image img = decode_image_file(files[i]);
      try {
        maps[i] = model.score_image(img);
      } catch (const Error& e) {
        throw Error(e.kind(), files[i].string() + ": " + e.what());
      }
      sizes[i] = {img.width, img.height};
    });
    Json results = Json::array();
    for (size_t i = 0; i < files.size(); ++i) {
      Json heat = nullptr;
      if (!heatmaps[i].empty()) {
        write_file_atomic(heatmaps[i],
                          heatmap_png(maps[i], sizes[i].first, sizes[i].second, model.threshold()));
        heat = heatmaps[i].string();
      }
      results.push_back({{"path", files[i].string()},
                         {"score", maps[i].score},
                         {"anomaly", maps[i].score >= model.threshold()},
                         {"heatmap", heat}});
    }
    print_json({{"model", opt->model}, {"threshold", model.threshold()}, {"results", results}});
  });
}

void register_eval(CLI::App* image) {
  struct Options {
    std::string data;
    FitOptions fit;
    int threads = 0;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = image->add_subcommand(
      "eval", "Image and pixel AUROC on a magnetic-tile style folder (manifest.csv, MT_Free good)");
  cmd->add_option("--data", opt->data, "Folder with manifest.csv")->required();
  opt->fit.add_to(cmd);
  add_threads_option(cmd, &opt->threads);
  cmd->callback([opt] {
    apply_threads(opt->threads);
    const ImageEvalReport r = evaluate_image_anomaly(*command_pool(), opt->data, opt->fit.get());
    Json classes = Json::object();
    for (const auto& [cls, auc] : r.class_auroc) classes[cls] = auc;
    print_json({{"data", opt->data},
                {"good", r.good},
                {"defects", r.defects},
                {"image_auroc", r.image_auroc},
                {"class_auroc", classes},
                {"pixel_auroc", r.pixel_auroc},
                {"threshold", r.threshold},
                {"false_alarm_rate", r.false_alarm_rate},
                {"recall", r.recall},
                {"fit_seconds", r.fit_seconds},
                {"images_per_second", r.images_per_second},
                {"threads", command_pool()->size()},
                {"bank_rows", r.bank_rows},
                {"model_bytes", r.model_bytes}});
  });
}

void register_eval_boxes(CLI::App* image) {
  struct Options {
    std::string data, backbone;
    double top = 0.05;
    int threads = 0;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = image->add_subcommand(
      "eval-boxes",
      "Localisation on a NEU-DET style folder (manifest.csv, VOC boxes, no good photos): "
      "leave-one-out per class, fitted on the cells outside the other photos' boxes");
  cmd->add_option("--data", opt->data, "Folder with manifest.csv (image,annotation,class,...)")->required();
  cmd->add_option("--backbone", opt->backbone, "A timm ResNet folder instead of the texture descriptors");
  cmd->add_option("--top", opt->top, "Share of the heat-map's cells that form its top region")
      ->check(CLI::Range(0.001, 1.0));
  add_threads_option(cmd, &opt->threads);
  cmd->callback([opt] {
    apply_threads(opt->threads);
    // Every outside cell is kept (no coreset): the per-photo fits stay cheap.
    ImageAnomalyConfig config;
    config.bank_size = config.coreset_candidates = 1 << 16;
    config.folds = 2;
    config.photo_statistics = false;  // the bank sees parts of photos, not whole ones
    config.structure_statistics = false;
    config.use_patch_bank();
    std::shared_ptr<const PatchFeatureSource> source;
    if (!opt->backbone.empty()) source = open_backbone_features(opt->backbone);
    const BoxEvalReport r = evaluate_box_localisation(*command_pool(), opt->data, config, source, opt->top);
    auto row = [](const BoxClassResult& c) {
      return Json{{"photos", c.photos},
                  {"boxes", c.boxes},
                  {"box_hit_rate", c.boxes ? static_cast<double>(c.boxes_hit) / c.boxes : 0.0},
                  {"peak_in_box_rate", c.photos ? static_cast<double>(c.peaks_in_box) / c.photos : 0.0},
                  {"chance_peak_in_box", c.chance}};
    };
    Json classes = Json::object();
    for (const auto& entry : r.classes) classes[entry.first] = row(entry.second);
    print_json({{"data", opt->data},
                {"protocol", "leave-one-out per class, fitted on cells outside the other photos' boxes"},
                {"features", source ? source->to_json()["architecture"].get<std::string>() : std::string("texture")},
                {"top_fraction", r.top_fraction},
                {"all", row(r.all)},
                {"classes", classes},
                {"seconds", r.seconds},
                {"threads", command_pool()->size()}});
  });
}

}  // namespace

void register_image(CLI::App& app) {
  auto* image = app.add_subcommand(
      "image", "Surface-defect anomaly detection fitted on good photos (no pretrained weights)");
  image->require_subcommand(1);
  register_fit(image);
  register_detect(image);
  register_eval(image);
  register_eval_boxes(image);
}

}  // namespace mmfuse::cli
