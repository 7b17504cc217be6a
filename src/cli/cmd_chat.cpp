// `mmfuse chat`: an interactive session with a generative model. Replies
// stream as they are generated; `/image PATH` attaches an image to the next
// message, `/reset` starts over, Ctrl-C stops the reply (not the session),
// Ctrl-D or `/exit` ends it.
#include <csignal>
#include <cstdio>
#include <iostream>

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

namespace {

std::atomic<bool> interrupted{false};

void on_sigint(int) { interrupted.store(true); }

// SIGINT sets a flag instead of ending the process; no SA_RESTART, so a
// blocked read of the next line returns and the prompt is shown again.
void catch_sigint() {
  struct sigaction action {};
  action.sa_handler = on_sigint;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
}

}  // namespace

void register_chat(CLI::App& app) {
  struct Options {
    std::string model, adapter, system;
    std::vector<std::string> images;
    int threads = 0;
    std::string dtype = "f32";
    GenerationFlags flags;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("chat", "Talk with a generative model in the terminal");
  cmd->add_option("--model", opt->model, "Generative model folder (LLaVA, Llama)")->required();
  cmd->add_option("--image", opt->images, "Image attached to the first message (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--adapter", opt->adapter, "PEFT LoRA adapter folder, merged at load");
  cmd->add_option("--system", opt->system, "System message");
  add_generation_flags(cmd, &opt->flags);
  add_threads_option(cmd, &opt->threads);
  add_dtype_option(cmd, &opt->dtype);
  cmd->callback([opt] {
    apply_threads(opt->threads);
    const Precision precision = parse_precision(opt->dtype, "--dtype");
    auto model = with_flag("--model", [&] {
      return open_generative_model(opt->model, command_pool(), opt->adapter, precision);
    });
    const GenerationConfig config =
        generation_config_from(model->generation_defaults(), opt->flags);
    std::vector<Image> images, pending;
    for (const auto& path : opt->images)
      pending.push_back(with_flag("--image", [&] { return decode_image_file(path); }));
    nlohmann::json messages = nlohmann::json::array();
    if (!opt->system.empty()) messages.push_back({{"role", "system"}, {"content", opt->system}});
    catch_sigint();
    std::fprintf(stderr, "%s: /image PATH attaches an image, /reset clears, Ctrl-C stops a reply, "
                         "Ctrl-D ends\n", model->name().c_str());
    std::string line;
    while (true) {
      std::fprintf(stderr, "> ");
      interrupted.store(false);
      if (!std::getline(std::cin, line)) {
        if (std::cin.eof()) break;
        std::cin.clear();  // interrupted while waiting for a line
        std::fprintf(stderr, "\n");
        continue;
      }
      if (line.empty()) continue;
      if (line == "/exit" || line == "/quit") break;
      if (line == "/reset") {
        messages.erase(messages.begin() + (opt->system.empty() ? 0 : 1), messages.end());
        images.clear();
        pending.clear();
        continue;
      }
      if (line.rfind("/image ", 0) == 0) {
        try {
          pending.push_back(decode_image_file(line.substr(7)));
          std::fprintf(stderr, "(image attached to your next message)\n");
        } catch (const Error& e) {
          std::fprintf(stderr, "error: %s\n", e.what());
        }
        continue;
      }
      if (!pending.empty() && !model->takes_images()) {
        std::fprintf(stderr, "error: %s takes no images\n", model->name().c_str());
        pending.clear();
        continue;
      }
      nlohmann::json content = nlohmann::json::array();
      for (size_t i = 0; i < pending.size(); ++i) content.push_back({{"type", "image"}});
      content.push_back({{"type", "text"}, {"text", line}});
      messages.push_back({{"role", "user"}, {"content", content}});
      std::vector<Image> turn_images = images;
      turn_images.insert(turn_images.end(), pending.begin(), pending.end());

      try {
        GenerationRequest request;
        request.model = &model->language_model();
        request.tokenizer = &model->tokenizer();
        request.config = config;
        request.prompt = model->prepare(
            render_chat(model->chat_template(), messages, true, model->tokenizer()), turn_images);
        TextStream stream(model->tokenizer(), config.stop_strings);
        request.on_token = [&](int32_t token) {
          const std::string piece = stream.push(token);
          std::fwrite(piece.data(), 1, piece.size(), stdout);
          std::fflush(stdout);
          return !interrupted.load();
        };
        const GenerationResult result = generate(request);
        const std::string rest = stream.finish();
        std::printf("%s\n", rest.c_str());
        images = std::move(turn_images);
        pending.clear();
        const std::string answer = final_text(model->tokenizer(), result.sequences.front().tokens,
                                              config.stop_strings);
        messages.push_back({{"role", "assistant"}, {"content", answer}});
        if (result.sequences.front().finish_reason == FinishReason::cancelled)
          std::fprintf(stderr, "(stopped)\n");
      } catch (const Error& e) {
        messages.erase(messages.end() - 1);  // the turn did not happen
        std::fprintf(stderr, "error: %s\n", e.what());
      }
    }
  });
}

}  // namespace mmfuse::cli
