// A text-only Llama folder (LlamaForCausalLM: Llama-2/3, TinyLlama, Vicuna)
// as a GenerativeModel: the SentencePiece tokenizer, the decoder, the
// folder's chat template and generation_config.json.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "io/model_folder.h"
#include "models/generative_model.h"
#include "models/llama.h"

namespace mmfuse {

class LlamaForCausalLm final : public GenerativeModel {
 public:
  // `merge_adapter` (may be empty): a PEFT LoRA folder merged at load.
  static std::unique_ptr<LlamaForCausalLm> load(const std::filesystem::path& dir,
                                                std::shared_ptr<ThreadPool> pool,
                                                const std::filesystem::path& merge_adapter = {});

  const std::string& name() const override { return name_; }
  const std::string& model_type() const override { return model_type_; }
  const LanguageModel& language_model() const override { return *llama_; }
  const GenerativeTokenizer& tokenizer() const override { return *tokenizer_; }
  ThreadPool& pool() const override { return *pool_; }
  size_t weight_bytes() const override { return store_->total_bytes(); }
  bool takes_images() const override { return false; }
  std::string image_placeholder() const override { return ""; }
  PromptInput prepare(const std::string& prompt, const std::vector<Image>& images,
                      const LoraAdapter* adapter = nullptr) const override;
  const std::string& chat_template() const override { return chat_template_; }
  const GenerationConfig& generation_defaults() const override { return generation_; }
  std::shared_ptr<const LoraAdapter> load_adapter(const std::filesystem::path& dir) const override;

 private:
  LlamaForCausalLm() = default;
  std::string name_, model_type_ = "llama";
  std::shared_ptr<ThreadPool> pool_;
  std::shared_ptr<WeightStore> store_;
  std::unique_ptr<LlamaModel> llama_;
  std::unique_ptr<GenerativeTokenizer> tokenizer_;
  std::string chat_template_;
  GenerationConfig generation_;
};

}  // namespace mmfuse
