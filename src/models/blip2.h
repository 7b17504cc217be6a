// BLIP-2 (Salesforce/blip2-opt-*, blip2-flan-t5-* layout) as transformers
// 4.44's Blip2ForConditionalGeneration generates: the image goes through the
// vision tower, the Q-Former and language_projection (Blip2ImageEncoder), and
// its query rows go in front of the prompt's token embeddings — OPT as a
// decoder-only model, T5 / Flan-T5 as the encoder input. 4.44 processors put
// no image token in input_ids, so exactly one image per prompt, always first.
//
// Generation follows the language model's own config (text_config: OPT stops
// at "\n" = 50118, T5 starts the decoder from 0), not the folder's
// generation_config.json, as Blip2ForConditionalGeneration.generate does.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "io/model_folder.h"
#include "models/blip2_config.h"
#include "models/blip2_image_encoder.h"
#include "models/generative_model.h"

namespace mmfuse {

class Blip2Model final : public GenerativeModel {
 public:
  // Opens a BLIP-2 folder. `merge_adapter` (may be empty) is a PEFT LoRA
  // folder merged into the weights at load.
  // `precision`: the language model's weights as stored (f32) or q8_0 (int8).
  static std::unique_ptr<Blip2Model> load(const std::filesystem::path& dir,
                                          std::shared_ptr<ThreadPool> pool,
                                          const std::filesystem::path& merge_adapter = {},
                                          Precision precision = Precision::f32);

  const std::string& name() const override { return name_; }
  const std::string& model_type() const override { return model_type_; }
  const LanguageModel& language_model() const override { return *language_model_; }
  const GenerativeTokenizer& tokenizer() const override { return *tokenizer_; }
  ThreadPool& pool() const override { return *pool_; }
  size_t weight_bytes() const override { return store_->total_bytes(); }

  bool takes_images() const override { return true; }
  // Images are not placed by a token: the one image always comes first.
  std::string image_placeholder() const override { return ""; }
  // Exactly one image (BLIP-2 is trained on one); `prompt` may be empty
  // (captioning). Unmerged adapters are not supported (null only).
  PromptInput prepare(const std::string& prompt, const std::vector<Image>& images,
                      const LoraAdapter* adapter = nullptr) const override;

  // The folder's chat template, else a built-in one that writes BLIP-2's
  // question-answer format: "Question: q1 Answer: a1. Question: q2 Answer:",
  // and nothing for a single turn with no text (plain captioning).
  const std::string& chat_template() const override { return chat_template_; }
  const GenerationConfig& generation_defaults() const override { return generation_; }
  // Refused (unsupported): BLIP-2 adapters are merged at load (--adapter).
  std::shared_ptr<const LoraAdapter> load_adapter(const std::filesystem::path& dir) const override;

  // The same from the processor's input_ids and pixel_values [3, S, S]
  // already preprocessed: what the parity tests feed. Empty input_ids means
  // no prompt (text_config's bos_token_id, as 4.44 does).
  PromptInput prepare_ids(std::vector<int32_t> input_ids, const float* pixel_values) const;
  const Blip2ImageEncoder& image_encoder() const { return *image_encoder_; }
  const Blip2Config& config() const { return config_; }

 private:
  Blip2Model() = default;

  std::string name_, model_type_ = "blip-2";
  Blip2Config config_;
  std::shared_ptr<ThreadPool> pool_;
  std::shared_ptr<WeightStore> store_;
  std::unique_ptr<Blip2ImageEncoder> image_encoder_;
  std::unique_ptr<LanguageModel> language_model_;
  std::unique_ptr<GenerativeTokenizer> tokenizer_;
  std::string chat_template_;
  GenerationConfig generation_;
  int32_t text_bos_token_id_ = -1;
};

}  // namespace mmfuse
