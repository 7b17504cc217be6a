// Chat templates: turn a conversation into the prompt text a chat model was
// trained on, as transformers 4.44's `apply_chat_template(..., tokenize=False)`
// does. The template is Jinja, rendered by mmfuse's own interpreter
// (jinja_*.h) with the environment transformers sets up: trim_blocks,
// lstrip_blocks, `raise_exception(msg)` (-> mmfuse::Error bad_input carrying
// msg), its `tojson` filter, `{% generation %}`; `{% break %}` / `{% continue %}`
// are accepted too.
//
// Messages are Hugging Face's: [{"role": "user", "content": "text"}], or
// content as a list of parts [{"type": "text", "text": "..."}, {"type": "image"}].
//
// Thread-safety: a ChatTemplate is immutable once built; render() may be
// called from many threads at once. The free functions hold no state.
#pragma once

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mmfuse {

class GenerativeTokenizer;
namespace jinja {
struct Template;
}

class ChatTemplate {
 public:
  // Parses the template; syntax errors, unknown tags, filters and tests are
  // bad_input errors naming the line and column.
  explicit ChatTemplate(const std::string& source);

  // The variables the template sees: everything in extra_context (bos_token,
  // eos_token, unk_token, pad_token, tools, documents, ...), then `messages`
  // and `add_generation_prompt`; `tools` and `documents` are none unless
  // extra_context gives them. ordered_json keeps dict key order, which shows
  // when a template iterates a dict or prints one with tojson (tools).
  std::string render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                     const nlohmann::ordered_json& extra_context) const;

 private:
  std::shared_ptr<const jinja::Template> template_;
};

// Parses and renders in one call. nlohmann::json sorts object keys, so dicts
// a template iterates come out in key order; use the ordered_json overload or
// ChatTemplate when the caller's key order must show.
std::string render_chat_template(const std::string& template_source, const nlohmann::json& messages,
                                 bool add_generation_prompt, const nlohmann::json& extra_context);
std::string render_chat_template(const std::string& template_source, const nlohmann::ordered_json& messages,
                                 bool add_generation_prompt, const nlohmann::ordered_json& extra_context);

// Renders with bos/eos/unk/pad_token taken from the tokenizer (those it has).
// An empty template_source means the model folder has none: LLaVA-1.5's
// layout is used ("USER: <image>\n{text} ASSISTANT:", exactly what
// llava-hf's chat_template.json renders), with plain-string content treated
// as one text part.
std::string render_chat(const std::string& template_source, const nlohmann::json& messages,
                        bool add_generation_prompt, const GenerativeTokenizer& tokenizer);


// OpenAI chat messages -> Hugging Face messages: content parts
// {"type": "image_url", "image_url": {"url": URL}} (or "image_url": URL)
// become {"type": "image"}, text parts stay, other message fields are kept.
// image_urls lists the URLs in the order the images appear.
struct HfConversation {
  nlohmann::json messages;
  std::vector<std::string> image_urls;
};
// `content_as_parts` is how the template reads content (see
// template_reads_content_parts): true turns string content into one text
// part; false joins text-only part lists into a string (newline-separated)
// and refuses images, which such a template has no place for.
HfConversation openai_to_hf_messages(const nlohmann::json& openai_messages,
                                     bool content_as_parts = true);

// Whether a template loops over message content as a list of parts (LLaVA,
// newer multimodal templates) rather than printing it as a string (Llama-2,
// Mistral, Qwen2): the check vLLM makes to feed OpenAI messages to either kind.
bool template_reads_content_parts(const std::string& template_source);

}  // namespace mmfuse
