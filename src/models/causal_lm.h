// A text-only decoder folder as a GenerativeModel: LlamaForCausalLM (Llama-2/3,
// TinyLlama, Vicuna, Mistral) or OPTForCausalLM, with the folder's tokenizer
// (SentencePiece or GPT-2 byte-level BPE), chat template and
// generation_config.json.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "io/model_folder.h"
#include "models/generative_model.h"

namespace mmfuse {

class CausalLm final : public GenerativeModel {
 public:
  // Picks the decoder by config.json's model_type ("llama", "mistral", "opt").
  // `merge_adapter` (may be empty): a PEFT LoRA folder merged at load.
  // `precision`: f32 keeps the stored weights, int8 quantises them to q8_0.
  static std::unique_ptr<CausalLm> load(const std::filesystem::path& dir,
                                        std::shared_ptr<ThreadPool> pool,
                                        const std::filesystem::path& merge_adapter = {},
                                        Precision precision = Precision::f32);

  const std::string& name() const override { return name_; }
  const std::string& model_type() const override { return model_type_; }
  const LanguageModel& language_model() const override { return *decoder_; }
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
  CausalLm() = default;
  std::string name_, model_type_;
  std::string layers_prefix_;  // where the decoder layers' modules start (unmerged LoRA)
  std::shared_ptr<ThreadPool> pool_;
  std::shared_ptr<WeightStore> store_;
  std::unique_ptr<LanguageModel> decoder_;
  std::unique_ptr<GenerativeTokenizer> tokenizer_;
  std::string chat_template_;
  GenerationConfig generation_;
};

}  // namespace mmfuse
