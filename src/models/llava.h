// LLaVA-1.5 (llava-hf layout) as transformers 4.44's LlavaForConditionalGeneration
// computes it: the CLIP vision tower's hidden_states[vision_feature_layer]
// (class token dropped with the "default" strategy), a GELU MLP projector, and
// the projected rows spliced into the Llama prompt where each <image> token is.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "io/model_folder.h"
#include "models/clip.h"
#include "models/generative_model.h"
#include "models/llama.h"

namespace mmfuse {

struct LlavaConfig {
  LlamaConfig text;
  ClipVisionConfig vision;
  int64_t image_token_index = 32000;
  int vision_feature_layer = -2;
  bool keep_class_token = false;  // vision_feature_select_strategy "full"
  Activation projector_act = Activation::gelu;

  static LlavaConfig from_json(const nlohmann::json& config, const std::string& where);
};

class LlavaModel final : public GenerativeModel {
 public:
  // Opens a llava-hf folder. `merge_adapter` (may be empty) is a PEFT LoRA
  // folder merged into the weights at load.
  // `precision`: the language model's weights as stored (f32) or q8_0 (int8).
  static std::unique_ptr<LlavaModel> load(const std::filesystem::path& dir,
                                          std::shared_ptr<ThreadPool> pool,
                                          const std::filesystem::path& merge_adapter = {},
                                          Precision precision = Precision::f32);

  const std::string& name() const override { return name_; }
  const std::string& model_type() const override { return model_type_; }
  const LanguageModel& language_model() const override { return *llama_; }
  const GenerativeTokenizer& tokenizer() const override { return *tokenizer_; }
  ThreadPool& pool() const override { return *pool_; }
  size_t weight_bytes() const override { return store_->total_bytes(); }
  bool takes_images() const override { return true; }
  std::string image_placeholder() const override { return "<image>"; }
  PromptInput prepare(const std::string& prompt, const std::vector<Image>& images,
                      const LoraAdapter* adapter = nullptr) const override;
  const std::string& chat_template() const override { return chat_template_; }
  const GenerationConfig& generation_defaults() const override { return generation_; }
  std::shared_ptr<const LoraAdapter> load_adapter(const std::filesystem::path& dir) const override;

  // The same from token ids (the processor's input_ids) and pixel_values
  // [images, 3, S, S] already preprocessed: what the parity tests feed.
  PromptInput prepare_ids(const std::vector<int32_t>& input_ids, const float* pixel_values,
                          size_t images, const LoraAdapter* adapter = nullptr) const;
  // The projector output for pixel_values: [images, feature rows, text hidden].
  std::vector<float> image_features(const float* pixel_values, size_t images,
                                    const LoraAdapter* adapter = nullptr) const;
  // pixel_values of one image as CLIPImageProcessor makes them.
  std::vector<float> preprocess(const Image& image) const;
  const LlavaConfig& config() const { return config_; }
  const LlamaModel& llama() const { return *llama_; }
  size_t feature_rows() const;

 private:
  LlavaModel() = default;
  struct Adapter;

  std::string name_, model_type_ = "llava";
  LlavaConfig config_;
  std::shared_ptr<ThreadPool> pool_;
  std::shared_ptr<WeightStore> store_;
  std::unique_ptr<ClipVisionTower> vision_;
  Linear projector_1_, projector_2_;
  std::unique_ptr<LlamaModel> llama_;
  std::unique_ptr<GenerativeTokenizer> tokenizer_;
  std::unique_ptr<ImageProcessorConfig> image_processor_;
  std::string chat_template_;
  GenerationConfig generation_;
};

}  // namespace mmfuse
