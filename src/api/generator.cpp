// mmfuse::Generator (the public API) on top of the registry's GenerativeModel,
// the chat templates and the generation loop: the numbers `mmfuse generate`
// prints.
#include "mmfuse/generator.h"

#include "generate/chat_template.h"
#include "generate/generation_settings.h"
#include "generate/generator.h"
#include "generate/text_stream.h"
#include "models/generative_model.h"
#include "models/registry.h"
#include "vision/image.h"

namespace mmfuse {

namespace {

class ModelGenerator final : public Generator {
 public:
  explicit ModelGenerator(std::unique_ptr<GenerativeModel> model) : model_(std::move(model)) {}

  const std::string& name() const override { return model_->name(); }
  bool takes_images() const override { return model_->takes_images(); }

  Generated generate(const std::string& prompt, const std::vector<std::string>& image_paths,
                     const GenerationSettings& settings, const TextCallback& on_text) const override {
    std::vector<Image> images;
    for (const auto& path : image_paths) images.push_back(decode_image_file(path));
    GenerationRequest request;
    request.model = &model_->language_model();
    request.tokenizer = &model_->tokenizer();
    request.config = apply_settings(model_->generation_defaults(), settings);
    MMFUSE_CHECK(!on_text || request.config.num_beams == 1, bad_input,
                 "num_beams: beam search cannot stream its text (on_text needs num_beams 1)");
    request.prompt = model_->prepare(prompt, images);
    TextStream stream(model_->tokenizer(), request.config.stop_strings);
    if (on_text)
      request.on_token = [&](int32_t token) {
        const std::string piece = stream.push(token);
        return piece.empty() || on_text(piece);
      };
    const GenerationResult result = mmfuse::generate(request);
    const GeneratedSequence& best = result.sequences.front();
    if (on_text) {
      const std::string rest = stream.finish();
      if (!rest.empty()) on_text(rest);
    }
    Generated out;
    out.tokens = best.tokens;
    out.text = final_text(model_->tokenizer(), best.tokens, request.config.stop_strings);
    out.prompt_tokens = result.prompt_positions;
    out.finish_reason = to_string(best.finish_reason);
    return out;
  }

  Generated chat(const std::vector<ChatTurn>& turns, const GenerationSettings& settings,
                 const TextCallback& on_text) const override {
    nlohmann::json messages = nlohmann::json::array();
    std::vector<std::string> images;
    const bool parts = template_reads_content_parts(model_->chat_template());
    for (size_t i = 0; i < turns.size(); ++i) {
      const ChatTurn& t = turns[i];
      MMFUSE_CHECK(parts || t.image_paths.empty(), bad_input,
                   "turns[" + std::to_string(i) + "]: this model's chat template has no place for images");
      nlohmann::json content;
      if (parts) {
        content = nlohmann::json::array();
        for (const auto& path : t.image_paths) {
          content.push_back({{"type", "image"}});
          images.push_back(path);
        }
        content.push_back({{"type", "text"}, {"text", t.text}});
      } else {
        content = t.text;
      }
      messages.push_back({{"role", t.role}, {"content", content}});
    }
    const std::string prompt =
        render_chat(model_->chat_template(), messages, true, model_->tokenizer());
    return generate(prompt, images, settings, on_text);
  }

 private:
  std::unique_ptr<GenerativeModel> model_;
};

}  // namespace

std::unique_ptr<Generator> Generator::open(const std::string& model_dir,
                                           std::shared_ptr<ThreadPool> pool,
                                           const std::string& adapter_dir) {
  return std::make_unique<ModelGenerator>(
      open_generative_model(model_dir, std::move(pool), adapter_dir));
}

}  // namespace mmfuse
