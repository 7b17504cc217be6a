#include "cli/bench_generative.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>

#include "cli/common.h"
#include "core/precision.h"
#include "core/q8_0.h"
#include "core/typed_linear.h"
#include "mmfuse/error.h"
#include "models/generative_model.h"
#include "models/registry.h"
#include "vision/image.h"

namespace mmfuse::cli {

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

size_t weight_file_bytes(const std::filesystem::path& dir) {
  size_t total = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.path().extension() == ".safetensors") total += entry.file_size();
  return total;
}

int32_t greedy(const std::vector<float>& logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

// From reading the image file to the last of N greedy tokens, N always (no
// stop at eos, as the PyTorch peer runs with min_new_tokens = N).
void bench_caption(const GenerativeBenchOptions& opt, const GenerativeModel& model,
                   double load_ms) {
  const LanguageModel& lm = model.language_model();
  std::vector<float> logits(static_cast<size_t>(lm.vocab_size()));
  std::vector<double> caption_ms, first_ms, decode_ms;
  for (int run = 0; run < opt.iterations + 1; ++run) {  // run 0 warms caches and pages
    const double t0 = now_ms();
    const PromptInput prompt = model.prepare(opt.prompt, {decode_image_file(opt.image)});
    std::unique_ptr<DecoderState> state = lm.prefill(prompt, logits.data());
    const double t1 = now_ms();
    DecoderState* states[] = {state.get()};
    for (int i = 1; i < opt.new_tokens; ++i) {
      const int32_t next = greedy(logits);
      lm.decode(states, &next, 1, logits.data());
    }
    const double t2 = now_ms();
    if (run == 0) continue;
    caption_ms.push_back(t2 - t0);
    first_ms.push_back(t1 - t0);
    decode_ms.push_back(t2 - t1);
  }
  const double decode_tps =
      opt.new_tokens > 1 ? 1000.0 * (opt.new_tokens - 1) / median(decode_ms) : 0.0;
  Json result = {{"model", model.name()},
                 {"threads", command_pool()->size()},
                 {"image", opt.image},
                 {"new_tokens", opt.new_tokens},
                 {"caption_ms", median(caption_ms)},
                 {"first_token_ms", median(first_ms)},
                 {"decode_tokens_per_s", decode_tps},
                 {"peak_rss_mb", peak_rss_mb()},
                 {"load_ms", load_ms},
                 {"kernel_isa", kernels::typed_kernel_isa()}};
  if (opt.json) {
    print_json(result);
    return;
  }
  std::printf(
      "model %s, threads %d, caption of %s, %d new tokens\n  caption   %8.1f ms\n"
      "  first token %6.1f ms\n  decode    %8.2f tokens/s\n  load      %8.1f ms\n"
      "  peak RSS  %8.1f MB\n",
      model.name().c_str(), command_pool()->size(), opt.image.c_str(), opt.new_tokens,
      median(caption_ms), median(first_ms), decode_tps, load_ms, peak_rss_mb());
}

}  // namespace

void bench_generative(const GenerativeBenchOptions& opt) {
  const double t0 = now_ms();
  const Precision precision = parse_precision(opt.dtype, "--dtype");
  auto model = open_generative_model(opt.model, command_pool(), {}, precision);
  const double load_ms = now_ms() - t0;
  if (!opt.image.empty()) {
    MMFUSE_CHECK(model->takes_images(), bad_input,
                 "bench: --image given but " + opt.model + " does not take images");
    bench_caption(opt, *model, load_ms);
    return;
  }
  const LanguageModel& lm = model->language_model();
  MMFUSE_CHECK(static_cast<size_t>(opt.prompt_tokens + opt.new_tokens) < lm.max_positions(),
               bad_input,
               "bench: --prompt-tokens + --new-tokens exceed the model's " +
                   std::to_string(lm.max_positions()) + " positions");

  // Random ids from the ordinary part of the vocabulary, BOS first (as llama-bench does).
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> token(100, static_cast<int32_t>(
                                                         std::min<size_t>(model->tokenizer().size(),
                                                                          static_cast<size_t>(lm.vocab_size())) - 1));
  PromptInput prompt;
  std::vector<int32_t> ids(static_cast<size_t>(opt.prompt_tokens));
  for (auto& id : ids) id = token(rng);
  if (model->tokenizer().bos_id() >= 0) ids.front() = model->tokenizer().bos_id();
  prompt.segments.push_back({ids, {}, 0});
  prompt.context_ids = ids;

  std::vector<float> logits(static_cast<size_t>(lm.vocab_size()));
  std::vector<double> prefill_ms, decode_ms;
  size_t cache_bytes = 0;
  for (int run = 0; run < opt.iterations + 1; ++run) {  // run 0 warms caches and pages
    const double p0 = now_ms();
    std::unique_ptr<DecoderState> state = lm.prefill(prompt, logits.data());
    const double p1 = now_ms();
    DecoderState* states[] = {state.get()};
    for (int i = 0; i < opt.new_tokens; ++i) {
      const int32_t next = greedy(logits);
      lm.decode(states, &next, 1, logits.data());
    }
    const double p2 = now_ms();
    cache_bytes = state->cache_bytes();
    if (run == 0) continue;
    prefill_ms.push_back(p1 - p0);
    decode_ms.push_back(p2 - p1);
  }
  const double prefill_tps = 1000.0 * opt.prompt_tokens / median(prefill_ms);
  const double decode_tps = 1000.0 * opt.new_tokens / median(decode_ms);
  const double file_mb = static_cast<double>(weight_file_bytes(opt.model)) / (1024.0 * 1024.0);
  const double kv_mb = static_cast<double>(cache_bytes) / (1024.0 * 1024.0);
  Json result = {{"model", model->name()},
                 {"threads", command_pool()->size()},
                 {"prompt_tokens", opt.prompt_tokens},
                 {"new_tokens", opt.new_tokens},
                 {"prefill_tokens_per_s", prefill_tps},
                 {"decode_tokens_per_s", decode_tps},
                 {"peak_rss_mb", peak_rss_mb()},
                 {"load_ms", load_ms},
                 {"weights_file_mb", file_mb},
                 {"kv_cache_mb", kv_mb},
                 {"dtype", to_string(precision)},
                 {"kernel_isa", precision == Precision::int8 ? kernels::q8_0_kernel_isa()
                                                             : kernels::typed_kernel_isa()}};
  if (opt.json) {
    print_json(result);
    return;
  }
  std::printf(
      "model %s, threads %d, %d prompt + %d new tokens\n  prefill   %8.1f tokens/s\n"
      "  decode    %8.2f tokens/s\n  load      %8.1f ms\n  peak RSS  %8.1f MB (weights file "
      "%.1f MB + KV cache %.1f MB)\n",
      model->name().c_str(), command_pool()->size(), opt.prompt_tokens, opt.new_tokens, prefill_tps,
      decode_tps, load_ms, peak_rss_mb(), file_mb, kv_mb);
}

}  // namespace mmfuse::cli
