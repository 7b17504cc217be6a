#include "models/llava.h"

#include <algorithm>
#include <cstring>

#include "mmfuse/error.h"
#include "models/lora.h"
#include "text/chat_template_file.h"
#include "text/generative_tokenizer_files.h"

namespace mmfuse {

namespace fs = std::filesystem;

namespace {
const std::string kVisionPrefix = "vision_tower.vision_model.";
const std::string kProjectorPrefix = "multi_modal_projector.";
const std::string kLanguagePrefix = "language_model.";
}  // namespace

// An adapter served unmerged: the language model applies its updates per
// sequence; the vision tower is small next to it, so its updated layers are
// merged into a copy of the tower that shares every other weight.
struct LlavaModel::Adapter final : LoraAdapter {
  std::vector<std::vector<float>> merged_vision_weights;
  std::unique_ptr<ClipVisionTower> vision;  // null when the adapter leaves the tower alone
};

LlavaConfig LlavaConfig::from_json(const nlohmann::json& config, const std::string& where) {
  MMFUSE_CHECK(config.is_object(), bad_input, where + ": config must be a JSON object");
  const JsonFields f(config, where);
  LlavaConfig c;
  static const nlohmann::json empty = nlohmann::json::object();
  const auto sub = [&](const char* key) -> const nlohmann::json& {
    if (!config.contains(key) || config[key].is_null()) return empty;
    MMFUSE_CHECK(config[key].is_object(), bad_input, where + ": " + key + " must be an object");
    return config[key];
  };
  const nlohmann::json& text = sub("text_config");
  const std::string text_type = JsonFields(text, where).string("model_type", "llama");
  MMFUSE_CHECK(text_type == "llama" || text_type == "mistral", unsupported,
               where + ": text_config.model_type \"" + text_type +
                   "\" is not supported (LLaVA with a Llama-family language model is)");
  c.text = LlamaConfig::from_json(text, where + " text_config");
  // LlavaConfig's vision_config default is CLIP ViT-L/14 at 336.
  nlohmann::json vision = {{"hidden_size", 1024}, {"intermediate_size", 4096},
                           {"num_hidden_layers", 24}, {"num_attention_heads", 16},
                           {"image_size", 336},       {"patch_size", 14}};
  vision.update(sub("vision_config"));
  const std::string vision_type = JsonFields(vision, where).string("model_type", "clip_vision_model");
  MMFUSE_CHECK(vision_type == "clip_vision_model", unsupported,
               where + ": vision_config.model_type \"" + vision_type +
                   "\" is not supported (the CLIP vision tower is)");
  c.vision = ClipVisionConfig::from_json(vision, where + " vision_config");
  c.image_token_index = f.integer("image_token_index", 32000);
  MMFUSE_CHECK(config.value("vision_feature_layer", nlohmann::json(-2)).is_number_integer(),
               unsupported, where + ": vision_feature_layer must be one integer");
  c.vision_feature_layer = static_cast<int>(f.integer("vision_feature_layer", -2));
  const int layers = c.vision.num_hidden_layers;
  const int k = c.vision_feature_layer < 0 ? layers + 1 + c.vision_feature_layer
                                           : c.vision_feature_layer;
  MMFUSE_CHECK(k >= 0 && k <= layers, bad_input,
               where + ": vision_feature_layer " + std::to_string(c.vision_feature_layer) +
                   " is outside the vision tower's " + std::to_string(layers) + " layers");
  const std::string strategy = f.string("vision_feature_select_strategy", "default");
  MMFUSE_CHECK(strategy == "default" || strategy == "full", unsupported,
               where + ": vision_feature_select_strategy \"" + strategy +
                   "\" is not supported (default, full)");
  c.keep_class_token = strategy == "full";
  c.projector_act =
      parse_activation(f.string("projector_hidden_act", "gelu"), where + " projector_hidden_act");
  return c;
}

std::unique_ptr<LlavaModel> LlavaModel::load(const fs::path& dir, std::shared_ptr<ThreadPool> pool,
                                             const fs::path& merge_adapter, Precision precision) {
  MMFUSE_CHECK(fs::is_directory(dir), not_found, dir.string() + ": model folder not found");
  std::unique_ptr<LlavaModel> m(new LlavaModel());
  m->pool_ = pool_or_own(std::move(pool));
  m->name_ = fs::absolute(dir).lexically_normal().filename().string();
  if (m->name_.empty())
    m->name_ = fs::absolute(dir).lexically_normal().parent_path().filename().string();
  const fs::path config_path = dir / "config.json";
  m->config_ = LlavaConfig::from_json(read_json_file(config_path), config_path.string());
  m->tokenizer_ = load_generative_tokenizer(dir);
  m->store_ = WeightStore::open_folder(dir, decoder_weight_residency(precision));
  WeightStore& store = *m->store_;
  if (!merge_adapter.empty()) merge_lora_into(*read_lora_adapter(merge_adapter, store), store);

  const LlavaConfig& c = m->config_;
  m->vision_ = std::make_unique<ClipVisionTower>(store, c.vision, "vision_tower.vision_model");
  m->projector_1_ = load_linear(store, kProjectorPrefix + "linear_1", c.vision.hidden_size,
                                c.text.hidden_size);
  m->projector_2_ = load_linear(store, kProjectorPrefix + "linear_2", c.text.hidden_size,
                                c.text.hidden_size);
  store.set_decoder_precision(precision, m->pool_);  // the language model's weights only
  m->llama_ = std::make_unique<LlamaModel>(store, c.text, kLanguagePrefix, m->pool_, m->name_);
  m->image_processor_ = load_image_processor(dir, c.vision.image_size);
  m->chat_template_ = text::read_chat_template(dir);
  m->generation_ = load_generation_config(dir);
  return m;
}

size_t LlavaModel::feature_rows() const {
  const size_t patches = static_cast<size_t>(config_.vision.patches_per_side()) *
                         static_cast<size_t>(config_.vision.patches_per_side());
  return config_.keep_class_token ? patches + 1 : patches;
}

std::vector<float> LlavaModel::preprocess(const Image& image) const {
  MMFUSE_CHECK(image_processor_ != nullptr, not_found,
               name_ + ": preprocessor_config.json is missing; it is needed for images");
  const size_t side = static_cast<size_t>(config_.vision.image_size);
  std::vector<float> pixels(3 * side * side);
  preprocess_image(image, *image_processor_, pixels.data());
  return pixels;
}

std::vector<float> LlavaModel::image_features(const float* pixel_values, size_t images,
                                              const LoraAdapter* adapter) const {
  const auto* own = dynamic_cast<const Adapter*>(adapter);
  MMFUSE_CHECK(adapter == nullptr || own != nullptr, bad_input,
               "the LoRA adapter was not loaded for model " + name_);
  const ClipVisionTower& tower = own != nullptr && own->vision ? *own->vision : *vision_;
  const int layers = config_.vision.num_hidden_layers;
  const int k = config_.vision_feature_layer < 0 ? layers + 1 + config_.vision_feature_layer
                                                 : config_.vision_feature_layer;
  const std::vector<float> hidden = tower.hidden_states_at(*pool_, pixel_values, images, k);
  const size_t dv = static_cast<size_t>(config_.vision.hidden_size);
  const size_t dt = static_cast<size_t>(config_.text.hidden_size);
  const size_t tokens = static_cast<size_t>(config_.vision.num_positions());
  const size_t rows = feature_rows(), skip = tokens - rows;
  std::vector<float> selected(images * rows * dv);
  for (size_t i = 0; i < images; ++i)
    std::memcpy(&selected[i * rows * dv], &hidden[(i * tokens + skip) * dv], rows * dv * sizeof(float));

  const size_t n = images * rows;
  std::vector<float> mid(n * dt), out(n * dt);
  linear(*pool_, selected.data(), n, projector_1_, mid.data());
  if (adapter != nullptr)
    if (const LoraWeights* l = adapter->find(kProjectorPrefix + "linear_1"))
      add_lora_update(*l, selected.data(), n, dv, mid.data(), dt);
  activate(*pool_, mid.data(), mid.size(), config_.projector_act);
  linear(*pool_, mid.data(), n, projector_2_, out.data());
  if (adapter != nullptr)
    if (const LoraWeights* l = adapter->find(kProjectorPrefix + "linear_2"))
      add_lora_update(*l, mid.data(), n, dt, out.data(), dt);
  return out;
}

PromptInput LlavaModel::prepare_ids(const std::vector<int32_t>& input_ids, const float* pixel_values,
                                    size_t images, const LoraAdapter* adapter) const {
  const size_t placeholders = static_cast<size_t>(
      std::count(input_ids.begin(), input_ids.end(), static_cast<int32_t>(config_.image_token_index)));
  MMFUSE_CHECK(placeholders == images, bad_input,
               "the prompt has " + std::to_string(placeholders) + " <image> token(s) but " +
                   std::to_string(images) + " image(s) were given");
  const size_t rows = feature_rows();
  const size_t dt = static_cast<size_t>(config_.text.hidden_size);
  const std::vector<float> features =
      images > 0 ? image_features(pixel_values, images, adapter) : std::vector<float>{};
  PromptInput prompt;
  prompt.context_ids = input_ids;
  size_t image = 0;
  for (int32_t id : input_ids) {
    if (id == config_.image_token_index) {
      PromptSegment seg;
      seg.rows = rows;
      seg.embeddings.assign(features.begin() + static_cast<long>(image * rows * dt),
                            features.begin() + static_cast<long>((image + 1) * rows * dt));
      prompt.segments.push_back(std::move(seg));
      ++image;
    } else {
      if (prompt.segments.empty() || prompt.segments.back().rows > 0)
        prompt.segments.emplace_back();
      prompt.segments.back().ids.push_back(id);
    }
  }
  return prompt;
}

PromptInput LlavaModel::prepare(const std::string& prompt, const std::vector<Image>& images,
                                const LoraAdapter* adapter) const {
  const std::vector<int32_t> ids = tokenizer_->encode(prompt, true);
  const size_t side = static_cast<size_t>(config_.vision.image_size);
  std::vector<float> pixels(images.size() * 3 * side * side);
  for (size_t i = 0; i < images.size(); ++i) {
    const std::vector<float> one = preprocess(images[i]);
    std::copy(one.begin(), one.end(), pixels.begin() + static_cast<long>(i * one.size()));
  }
  return prepare_ids(ids, pixels.data(), images.size(), adapter);
}

std::shared_ptr<const LoraAdapter> LlavaModel::load_adapter(const fs::path& dir) const {
  std::unique_ptr<LoraAdapter> read = read_lora_adapter(dir, *store_);
  MMFUSE_CHECK(read->replaced_tensors.empty(), unsupported,
               dir.string() + ": modules_to_save replace whole layers; such an adapter can only be "
                              "merged at load (generate --adapter), not served unmerged");
  auto adapter = std::make_shared<Adapter>();
  adapter->name = read->name;
  adapter->dir = read->dir;
  adapter->modules = std::move(read->modules);
  std::map<std::string, const float*> vision_weights;
  for (const auto& [module, lora] : adapter->modules) {
    const bool in_language = module.rfind(kLanguagePrefix + "model.layers.", 0) == 0;
    const bool in_projector = module == kProjectorPrefix + "linear_1" ||
                              module == kProjectorPrefix + "linear_2";
    const bool in_vision = module.rfind(kVisionPrefix + "encoder.layers.", 0) == 0;
    MMFUSE_CHECK(in_language || in_projector || in_vision, unsupported,
                 dir.string() + ": a LoRA update of \"" + module +
                     "\" cannot be served unmerged; merge the adapter at load instead");
    if (in_vision) {
      const float* base = store_->f32(module + ".weight", {lora.out, lora.in});
      adapter->merged_vision_weights.push_back(merged_lora_weight(lora, base));
      vision_weights[module.substr(kVisionPrefix.size())] =
          adapter->merged_vision_weights.back().data();
    }
  }
  if (!vision_weights.empty())
    adapter->vision = std::make_unique<ClipVisionTower>(vision_->with_linear_weights(vision_weights));
  return adapter;
}

}  // namespace mmfuse
