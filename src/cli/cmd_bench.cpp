// `mmfuse bench`: times model load, image and text embedding so anyone can
// repeat the figures in the README (bench/run_bench.sh compares them with PyTorch).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "cli/bench_accuracy.h"
#include "cli/bench_generative.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "core/precision.h"
#include "core/profiler.h"
#include "io/model_folder.h"
#include "mmfuse/error.h"
#include "models/bert.h"
#include "models/dual_encoder.h"
#include "models/registry.h"

namespace mmfuse::cli {

namespace {

// Typical captions (about 8-16 tokens), padded to the context length as CLIPProcessor does.
const char* const kCaptions[] = {
    "a photo of a cat sitting on a red sofa in the living room",
    "an industrial pump with a rusty pipe and a leaking valve",
    "two people walking a dog along the beach at sunset",
    "a close-up photo of a printed circuit board with a burnt resistor",
};

// Process CPU time (user + system), in ms.
double cpu_ms() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  auto ms = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_usec) * 1e-3;
  };
  return ms(usage.ru_utime) + ms(usage.ru_stime);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// Median wall time of the timed runs, in ms; `cpu` (if given) gets the median
// process CPU time, which other jobs on the machine hardly change at 1 thread.
template <typename Run>
double median_ms(int warmup, int iterations, Run&& run, double* cpu = nullptr) {
  for (int i = 0; i < warmup; ++i) run();
  std::vector<double> wall, used;
  for (int i = 0; i < iterations; ++i) {
    const double start = now_ms(), start_cpu = cpu_ms();
    run();
    wall.push_back(now_ms() - start);
    used.push_back(cpu_ms() - start_cpu);
  }
  if (cpu != nullptr) *cpu = median(used);
  return median(wall);
}

// BERT: the full BertModel forward (last_hidden_state of every position, then
// the pooler when the checkpoint has one) on random token ids of --seq-len,
// what bench/torch_bert.py times for PyTorch.
template <typename Options>
void bench_bert(const Options& opt, const Architecture& arch) {
  const double t0 = now_ms(), t0_cpu = cpu_ms();
  const Precision precision = supported_precision(parse_precision(opt.dtype, "--dtype"));
  auto model = arch.open_text_encoder(opt.model, command_pool(), precision);
  const double load_ms = now_ms() - t0;
  const double load_cpu_ms = cpu_ms() - t0_cpu;  // steadier than wall time on a busy machine
  const BertEncoder& enc = model->encoder();
  const size_t batch = static_cast<size_t>(opt.batch), len = static_cast<size_t>(opt.seq_len);
  MMFUSE_CHECK(len <= static_cast<size_t>(enc.config().max_position_embeddings), bad_input,
               "bench: --seq-len " + std::to_string(len) + " exceeds max_position_embeddings");
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int64_t> token(1000, enc.config().vocab_size - 1);
  TokenBatch tokens;
  for (size_t b = 0; b < batch; ++b) {
    std::vector<int64_t> ids(len);
    for (auto& id : ids) id = token(rng);
    ids.front() = model->tokenizer().cls_id();
    ids.back() = model->tokenizer().sep_id();
    tokens.input_ids.push_back(ids);
    tokens.attention_mask.emplace_back(len, 1);
    tokens.token_type_ids.emplace_back(len, 0);
  }
  ThreadPool& pool = *command_pool();
  const size_t hidden = static_cast<size_t>(enc.config().hidden_size);
  double cpu = 0.0;
  const double ms = median_ms(
      opt.warmup, opt.iterations,
      [&] {
        std::vector<float> x = enc.forward(pool, tokens);
        if (enc.has_pooler()) {
          std::vector<float> cls(batch * hidden);
          for (size_t b = 0; b < batch; ++b)
            std::copy_n(x.data() + b * len * hidden, hidden, cls.data() + b * hidden);
          (void)enc.apply_pooler(pool, cls.data(), batch);
        }
      },
      &cpu);
  const double cls_ms = median_ms(opt.warmup, opt.iterations,
                                  [&] { (void)enc.pooled(pool, tokens, TextPooling::cls); });
  Json result = {{"model", model->name()},
                 {"dtype", to_string(precision)},
                 {"isa", compute_isa()},
                 {"batch", opt.batch},
                 {"threads", command_pool()->size()},
                 {"seq_len", opt.seq_len},
                 {"iterations", opt.iterations},
                 {"text_ms_per_item", ms / static_cast<double>(batch)},
                 {"sequences_per_s", 1000.0 * static_cast<double>(batch) / ms},
                 {"text_cpu_ms_per_item", cpu / static_cast<double>(batch)},
                 {"cls_embed_ms_per_item", cls_ms / static_cast<double>(batch)},
                 {"load_ms", load_ms},
                 {"load_cpu_ms", load_cpu_ms},
                 {"peak_rss_mb", peak_rss_mb()},
                 {"weights_mb", static_cast<double>(model->weight_bytes()) / (1024.0 * 1024.0)}};
  if (opt.json) {
    print_json(result);
  } else {
    std::printf(
        "model %s (BERT), batch %d, seq_len %d, threads %d\n  forward     %8.2f ms/sequence "
        "(%.1f sequences/s)\n  cls embed   %8.2f ms/sequence\n  load        %8.1f ms\n",
        model->name().c_str(), opt.batch, opt.seq_len, command_pool()->size(),
        ms / static_cast<double>(batch), 1000.0 * static_cast<double>(batch) / ms,
        cls_ms / static_cast<double>(batch), load_ms);
  }
}

// CLIP / Chinese-CLIP: both towers at --batch, texts padded to the context length.
template <typename Options>
void bench_two_tower(const Options& opt, const Architecture& arch) {
  const double t0 = now_ms(), t0_cpu = cpu_ms();
  const Precision precision = supported_precision(parse_precision(opt.dtype, "--dtype"));
  auto model = arch.open_dual_encoder(opt.model, command_pool(), precision);
  const double load_ms = now_ms() - t0;
  const double load_cpu_ms = cpu_ms() - t0_cpu;  // steadier than wall time on a busy machine

  const size_t batch = static_cast<size_t>(opt.batch);
  const size_t side = static_cast<size_t>(model->image_size());
  std::vector<float> pixels(batch * 3 * side * side);
  std::mt19937 rng(1234);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : pixels) v = normal(rng);
  std::vector<std::string> texts;
  for (size_t i = 0; i < batch; ++i) texts.push_back(kCaptions[i % std::size(kCaptions)]);
  const TokenBatch tokens = model->tokenize(texts, /*pad=*/true);

  // Median over iterations, per item (the PyTorch peer reports the same).
  Json profile = Json::object();
  double cpu_per_item = 0.0;  // of the last time_per_item: median process CPU ms per item
  auto time_per_item = [&](const char* what, auto&& run) {
    for (int i = 0; i < opt.warmup; ++i) run();
    profiler::reset();
    profiler::enable(opt.profile);
    std::vector<double> ms, cpu;
    for (int i = 0; i < opt.iterations; ++i) {
      const double start = now_ms(), start_cpu = cpu_ms();
      run();
      ms.push_back(now_ms() - start);
      cpu.push_back(cpu_ms() - start_cpu);
    }
    cpu_per_item = median(cpu) / static_cast<double>(batch);
    profiler::enable(false);
    if (opt.profile) {
      Json ops = Json::object();
      for (const auto& [name, total, calls] : profiler::report())
        ops[name] = {{"ms_per_iteration", total / opt.iterations},
                     {"calls_per_iteration", calls / opt.iterations}};
      profile[what] = ops;
    }
    std::sort(ms.begin(), ms.end());
    const double median =
        ms.size() % 2 ? ms[ms.size() / 2] : 0.5 * (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]);
    return median / static_cast<double>(batch);
  };
  const double image_ms =
      time_per_item("image", [&] { model->image_features(pixels.data(), batch); });
  const double image_cpu_ms = cpu_per_item;
  const double text_ms = time_per_item("text", [&] { model->text_features(tokens); });
  const double text_cpu_ms = cpu_per_item;
  Json result = {{"model", model->name()},
                 {"dtype", to_string(precision)},
                 {"isa", compute_isa()},
                 {"batch", opt.batch},
                 {"threads", command_pool()->size()},
                 {"iterations", opt.iterations},
                 {"image_ms_per_item", image_ms},
                 {"text_ms_per_item", text_ms},
                 {"image_cpu_ms_per_item", image_cpu_ms},
                 {"text_cpu_ms_per_item", text_cpu_ms},
                 {"load_ms", load_ms},
                 {"load_cpu_ms", load_cpu_ms},
                 {"peak_rss_mb", peak_rss_mb()},
                 {"weights_mb", static_cast<double>(model->weight_bytes()) / (1024.0 * 1024.0)}};
  if (opt.profile) result["profile"] = profile;
  if (opt.json) {
    print_json(result);
  } else {
    std::printf("model %s, dtype %s (%s), batch %d, threads %d\n", model->name().c_str(),
                to_string(precision), compute_isa(), opt.batch, command_pool()->size());
    std::printf(
        "  load        %8.1f ms\n  image       %8.2f ms/item\n  text        %8.2f ms/item\n"
        "  peak RSS    %8.1f MB (weights %.1f MB)\n",
        load_ms, image_ms, text_ms, peak_rss_mb(),
        static_cast<double>(model->weight_bytes()) / (1024.0 * 1024.0));
    if (opt.profile) std::printf("%s\n", profile.dump(2).c_str());
  }
}

}  // namespace

void register_bench(CLI::App& app) {
  struct Options {
    std::string model;
    int batch = 1, threads = 0, iterations = 10, warmup = 2, seq_len = 64;
    int prompt_tokens = 128, new_tokens = 64;
    std::string image, prompt, dtype = "f32";
    std::vector<std::string> eval_images, eval_texts;
    int eval_synthetic = 32;
    bool json = false, profile = false, accuracy = false;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("bench", "Time model load and image/text embedding");
  cmd->add_option("--model", opt->model, "Model folder")->required();
  cmd->add_option("--batch", opt->batch, "Items per forward pass")->check(CLI::Range(1, 4096));
  cmd->add_option("--iterations", opt->iterations, "Timed forward passes")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--warmup", opt->warmup, "Untimed forward passes first")
      ->check(CLI::Range(0, 1000));
  cmd->add_flag("--json", opt->json, "Print one JSON object");
  cmd->add_flag("--profile", opt->profile, "Also report time per operator kind");
  cmd->add_option("--seq-len", opt->seq_len, "Text-only encoders (BERT): tokens per sequence")
      ->check(CLI::Range(2, 100000));
  cmd->add_option("--prompt-tokens", opt->prompt_tokens, "Generative models: prompt length")
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--new-tokens", opt->new_tokens, "Generative models: tokens decoded")
      ->check(CLI::Range(1, 1000000));
  cmd->add_option("--image", opt->image,
                  "Generative models that take images: time captioning this image instead "
                  "(decode, processor, prompt, --new-tokens greedy tokens)");
  cmd->add_option("--prompt", opt->prompt, "With --image: the prompt text (default: none)");
  add_threads_option(cmd, &opt->threads);
  add_dtype_option(cmd, &opt->dtype);
  cmd->add_flag("--accuracy", opt->accuracy,
                "Text-image models: compare --dtype with f32 (embedding cosine, zero-shot "
                "top-1 agreement) instead of timing");
  cmd->add_option("--eval-image", opt->eval_images,
                  "With --accuracy: image files or folders (default: 32 synthetic images)");
  cmd->add_option("--eval-synthetic", opt->eval_synthetic,
                  "With --accuracy and no --eval-image: how many synthetic images (default 32)")
      ->check(CLI::Range(1, 100000));
  cmd->add_option("--eval-text", opt->eval_texts,
                  "With --accuracy: texts (default: 16 built-in captions)");
  cmd->callback([opt, cmd] {
    apply_threads(opt->threads);
    command_pool();  // start the workers before timing the load
    if (opt->accuracy) {
      AccuracyBenchOptions a;
      a.model = opt->model;
      a.dtype = opt->dtype;
      a.images = opt->eval_images;
      a.synthetic_images = opt->eval_synthetic;
      a.texts = opt->eval_texts;
      a.json = opt->json;
      bench_accuracy(a);
      return;
    }
    if (architecture_of(opt->model).can(Capability::generate)) {
      GenerativeBenchOptions g;
      g.model = opt->model;
      g.prompt_tokens = opt->prompt_tokens;
      g.new_tokens = opt->new_tokens;
      g.image = opt->image;
      g.prompt = opt->prompt;
      if (cmd->count("--iterations") > 0) g.iterations = opt->iterations;
      g.json = opt->json;
      g.dtype = opt->dtype;
      bench_generative(g);
      return;
    }
    const Architecture& arch =
        architecture_with(opt->model, Capability::embed_text, "be benchmarked by mmfuse bench");
    if (arch.open_dual_encoder)
      bench_two_tower(*opt, arch);
    else
      bench_bert(*opt, arch);
  });
}

}  // namespace mmfuse::cli
