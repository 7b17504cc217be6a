// Captioner: prompt through the chat template, generate, decode (see captioner.h).
#include "generate/captioner.h"

#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "generate/chat_template.h"
#include "mmfuse/error.h"

namespace mmfuse {

namespace {

std::string trim_white_space(const std::string& s) {
  const char* space = " \t\r\n\f\v";
  const size_t first = s.find_first_not_of(space);
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(space) - first + 1);
}

std::string caption_prompt(const GenerativeModel& model, const std::string& text) {
  // A folder with no chat template whose images are not placed by a token
  // takes the prompt as is, as the HF processor does; render_chat's fallback
  // is LLaVA's layout, which would put "USER:" and "<image>" around it.
  // (BLIP-2 has its question-answer template: no text renders "", a text
  // "Question: {text} Answer:".)
  if (model.chat_template().empty() && model.image_placeholder().empty()) return text;
  nlohmann::json content = nlohmann::json::array({{{"type", "image"}}});
  if (!text.empty()) content.push_back({{"type", "text"}, {"text", text}});
  const nlohmann::json messages = nlohmann::json::array({{{"role", "user"}, {"content", content}}});
  return render_chat(model.chat_template(), messages, true, model.tokenizer());
}

}  // namespace

std::string default_caption_text(const GenerativeModel& model) {
  return model.image_placeholder().empty() ? "" : "Describe this image in one sentence.";
}

Captioner::Captioner(std::shared_ptr<const GenerativeModel> model, CaptionOptions options)
    : model_(std::move(model)) {
  MMFUSE_CHECK(model_ != nullptr, bad_input, "captioner: no model given");
  MMFUSE_CHECK(
      model_->takes_images(), bad_input,
      model_->name() + ": a text-only model (" + model_->model_type() + ") cannot caption images");
  MMFUSE_CHECK(options.max_new_tokens >= 1, bad_input, "max_new_tokens: must be at least 1");
  MMFUSE_CHECK(options.num_beams >= 1, bad_input, "num_beams: must be at least 1");
  prompt_ = caption_prompt(*model_, options.prompt.value_or(default_caption_text(*model_)));
  config_ = model_->generation_defaults();
  config_.max_new_tokens = options.max_new_tokens;
  config_.num_beams = options.num_beams;
  config_.num_return_sequences = 1;
  config_.do_sample = false;  // the same image always gets the same caption
  validate(config_);
}

Caption Captioner::caption(const Image& image) const {
  GenerationRequest request;
  request.model = &model_->language_model();
  request.tokenizer = &model_->tokenizer();
  request.config = config_;
  request.prompt = model_->prepare(prompt_, std::vector<Image>{image});
  const GenerationResult result = generate(request);
  const GeneratedSequence& best = result.sequences.front();
  Caption out;
  out.text = trim_white_space(model_->tokenizer().decode(best.tokens, true));
  out.tokens = best.tokens.size();
  out.finish_reason = best.finish_reason;
  return out;
}

}  // namespace mmfuse
