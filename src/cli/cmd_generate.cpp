// `mmfuse generate`: one answer from a generative model folder (LLaVA, Llama)
// for a prompt and optional images, as transformers' processor + generate.
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/precision.h"
#include "cli/generation_options.h"
#include "generate/chat_template.h"
#include "generate/generator.h"
#include "generate/text_stream.h"
#include "models/generative_model.h"
#include "models/registry.h"
#include "vision/image.h"

namespace mmfuse::cli {

void register_generate(CLI::App& app) {
  struct Options {
    std::string model, prompt, adapter;
    std::vector<std::string> images;
    bool chat = false, json = false, stream = false;
    int threads = 0;
    std::string dtype = "f32";
    GenerationFlags flags;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("generate", "Generate text from a prompt (and images)");
  cmd->add_option("--model", opt->model, "Generative model folder (LLaVA, Llama)")->required();
  cmd->add_option("--prompt", opt->prompt,
                  "Prompt, passed to the processor as is (with --chat: the user's message)");
  cmd->add_option("--image", opt->images, "Image file (repeatable; one per <image> in the prompt)")
      ->allow_extra_args(false);
  cmd->add_flag("--chat", opt->chat, "Wrap the prompt in the folder's chat template");
  cmd->add_option("--adapter", opt->adapter, "PEFT LoRA adapter folder, merged at load");
  cmd->add_flag("--json", opt->json, "Print one JSON object");
  cmd->add_flag("--stream", opt->stream, "Print the text as it is generated");
  add_generation_flags(cmd, &opt->flags);
  add_threads_option(cmd, &opt->threads);
  add_dtype_option(cmd, &opt->dtype);
  cmd->callback([opt] {
    apply_threads(opt->threads);
    const Precision precision = parse_precision(opt->dtype, "--dtype");
    auto model = with_flag("--model", [&] {
      return open_generative_model(opt->model, command_pool(), opt->adapter, precision);
    });
    std::vector<Image> images;
    for (const auto& path : opt->images)
      images.push_back(with_flag("--image", [&] { return decode_image_file(path); }));

    std::string prompt = opt->prompt;
    if (opt->chat) {
      nlohmann::json content = nlohmann::json::array();
      for (size_t i = 0; i < images.size(); ++i) content.push_back({{"type", "image"}});
      content.push_back({{"type", "text"}, {"text", opt->prompt}});
      const nlohmann::json messages = {{{"role", "user"}, {"content", content}}};
      prompt = render_chat(model->chat_template(), messages, true, model->tokenizer());
    }
    GenerationRequest request;
    request.model = &model->language_model();
    request.tokenizer = &model->tokenizer();
    request.config = generation_config_from(model->generation_defaults(), opt->flags);
    request.prompt = with_flag("--prompt", [&] { return model->prepare(prompt, images); });

    TextStream stream(model->tokenizer(), request.config.stop_strings);
    if (opt->stream && !opt->json && request.config.num_beams == 1) {
      request.on_token = [&](int32_t token) {
        const std::string piece = stream.push(token);
        if (!piece.empty()) {
          std::fwrite(piece.data(), 1, piece.size(), stdout);
          std::fflush(stdout);
        }
        return true;
      };
    }
    const GenerationResult result = generate(request);
    const GeneratedSequence& best = result.sequences.front();
    const std::string text = final_text(model->tokenizer(), best.tokens, request.config.stop_strings);
    if (opt->json) {
      Json out = {{"model", model->name()},
                  {"text", text},
                  {"tokens", best.tokens},
                  {"prompt_tokens", result.prompt_positions},
                  {"finish_reason", to_string(best.finish_reason)}};
      if (result.sequences.size() > 1) {
        Json all = Json::array();
        for (const auto& s : result.sequences)
          all.push_back({{"text", final_text(model->tokenizer(), s.tokens, request.config.stop_strings)},
                         {"tokens", s.tokens},
                         {"score", s.score},
                         {"finish_reason", to_string(s.finish_reason)}});
        out["sequences"] = all;
      }
      print_json(out);
    } else if (request.on_token) {
      const std::string rest = stream.finish();
      std::printf("%s\n", rest.c_str());
    } else {
      std::printf("%s\n", text.c_str());
    }
  });
}

}  // namespace mmfuse::cli
