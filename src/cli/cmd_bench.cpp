// `mmfuse bench`: times model load, image and text embedding so anyone can
// repeat the figures in the README (bench/run_bench.sh compares them with PyTorch).
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <random>

#include <algorithm>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/profiler.h"
#include "models/clip.h"

namespace mmfuse::cli {

namespace {

double now_ms() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double, std::milli>(clock::now().time_since_epoch()).count();
}

double peak_rss_mb() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

// Typical captions (about 8-16 tokens), padded to the context length as CLIPProcessor does.
const char* const kCaptions[] = {
    "a photo of a cat sitting on a red sofa in the living room",
    "an industrial pump with a rusty pipe and a leaking valve",
    "two people walking a dog along the beach at sunset",
    "a close-up photo of a printed circuit board with a burnt resistor",
};

}  // namespace

void register_bench(CLI::App& app) {
  struct Options {
    std::string model;
    int batch = 1, threads = 0, iterations = 10, warmup = 2;
    bool json = false, profile = false;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("bench", "Time model load and image/text embedding");
  cmd->add_option("--model", opt->model, "Model folder")->required();
  cmd->add_option("--batch", opt->batch, "Items per forward pass")->check(CLI::Range(1, 4096));
  cmd->add_option("--iterations", opt->iterations, "Timed forward passes")->check(CLI::Range(1, 100000));
  cmd->add_option("--warmup", opt->warmup, "Untimed forward passes first")->check(CLI::Range(0, 1000));
  cmd->add_flag("--json", opt->json, "Print one JSON object");
  cmd->add_flag("--profile", opt->profile, "Also report time per operator kind");
  add_threads_option(cmd, &opt->threads);
  cmd->callback([opt] {
    apply_threads(opt->threads);
    default_pool();  // start the workers before timing the load
    const double t0 = now_ms();
    auto model = ClipModel::load(opt->model);
    const double load_ms = now_ms() - t0;

    const size_t batch = static_cast<size_t>(opt->batch);
    const size_t side = static_cast<size_t>(model->config().vision.image_size);
    std::vector<float> pixels(batch * 3 * side * side);
    std::mt19937 rng(1234);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float& v : pixels) v = normal(rng);
    std::vector<std::string> texts;
    for (size_t i = 0; i < batch; ++i) texts.push_back(kCaptions[i % std::size(kCaptions)]);
    const TokenBatch tokens = model->tokenizer().encode_batch(texts, model->context_length());

    // Median over iterations, per item (the PyTorch peer reports the same).
    Json profile = Json::object();
    auto time_per_item = [&](const char* what, auto&& run) {
      for (int i = 0; i < opt->warmup; ++i) run();
      profiler::reset();
      profiler::enable(opt->profile);
      std::vector<double> ms;
      for (int i = 0; i < opt->iterations; ++i) {
        const double start = now_ms();
        run();
        ms.push_back(now_ms() - start);
      }
      profiler::enable(false);
      if (opt->profile) {
        Json ops = Json::object();
        for (const auto& [name, total, calls] : profiler::report())
          ops[name] = {{"ms_per_iteration", total / opt->iterations}, {"calls_per_iteration", calls / opt->iterations}};
        profile[what] = ops;
      }
      std::sort(ms.begin(), ms.end());
      const double median = ms.size() % 2 ? ms[ms.size() / 2] : 0.5 * (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]);
      return median / static_cast<double>(batch);
    };
    const double image_ms = time_per_item("image", [&] { model->image_features(pixels.data(), batch); });
    const double text_ms = time_per_item("text", [&] { model->text_features(tokens); });
    Json result = {{"model", model->name()},
                             {"batch", opt->batch},
                             {"threads", default_pool().size()},
                             {"iterations", opt->iterations},
                             {"image_ms_per_item", image_ms},
                             {"text_ms_per_item", text_ms},
                             {"load_ms", load_ms},
                             {"peak_rss_mb", peak_rss_mb()},
                             {"weights_mb", static_cast<double>(model->weight_bytes()) / (1024.0 * 1024.0)}};
    if (opt->profile) result["profile"] = profile;
    if (opt->json) {
      print_json(result);
    } else {
      std::printf("model %s, batch %d, threads %d\n", model->name().c_str(), opt->batch,
                  default_pool().size());
      std::printf("  load        %8.1f ms\n  image       %8.2f ms/item\n  text        %8.2f ms/item\n"
                  "  peak RSS    %8.1f MB (weights %.1f MB)\n",
                  load_ms, image_ms, text_ms, peak_rss_mb(),
                  static_cast<double>(model->weight_bytes()) / (1024.0 * 1024.0));
      if (opt->profile) std::printf("%s\n", profile.dump(2).c_str());
    }
  });
}

}  // namespace mmfuse::cli
