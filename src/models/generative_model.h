// A model that writes text: a language model plus the tokenizer and the
// processor in front of it (LLaVA: image features spliced in at <image>;
// plain Llama: text only). The CLI, the server and the public API open one
// through the registry (models/registry.h: open_generative_model) and do not
// know the architecture.
//
// Thread-safety: all methods are const and may be called from many threads.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "io/generation_config.h"
#include "models/language_model.h"
#include "text/generative_tokenizer.h"
#include "vision/image.h"

namespace mmfuse {

class GenerativeModel {
 public:
  virtual ~GenerativeModel() = default;
  virtual const std::string& name() const = 0;        // the folder's name
  virtual const std::string& model_type() const = 0;  // config.json model_type
  virtual const LanguageModel& language_model() const = 0;
  virtual const GenerativeTokenizer& tokenizer() const = 0;
  virtual ThreadPool& pool() const = 0;
  virtual size_t weight_bytes() const = 0;

  // Whether prompts may carry images, and the text that marks where each one
  // goes ("<image>" for LLaVA; "" when images are not placed by a token).
  virtual bool takes_images() const = 0;
  virtual std::string image_placeholder() const = 0;

  // The processor and the embedding of a prompt, as the HF processor + model
  // do it: `prompt` is tokenised as given (special tokens written in it are
  // honoured, BOS added as the tokenizer adds it); images fill the
  // placeholders in order. A count mismatch, or images given to a text-only
  // model, is bad_input. `adapter` (may be null) is applied unmerged to every
  // part it targets (the vision tower too).
  virtual PromptInput prepare(const std::string& prompt, const std::vector<Image>& images,
                              const LoraAdapter* adapter = nullptr) const = 0;

  // The folder's chat template (chat_template.json, else tokenizer_config.json's
  // chat_template; "" when it has none) and its generation_config.json.
  virtual const std::string& chat_template() const = 0;
  virtual const GenerationConfig& generation_defaults() const = 0;

  // Reads a PEFT LoRA adapter folder (adapter_config.json +
  // adapter_model.safetensors) for unmerged use with prepare() and
  // LanguageModel::prefill, checked against this model's weights (a shape
  // mismatch names the tensor; an adapter for another base is bad_input).
  virtual std::shared_ptr<const LoraAdapter> load_adapter(
      const std::filesystem::path& dir) const = 0;
};

}  // namespace mmfuse
