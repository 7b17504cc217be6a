#include "models/causal_lm.h"

#include "mmfuse/error.h"
#include "models/llama.h"
#include "models/lora.h"
#include "models/opt.h"
#include "text/chat_template_file.h"
#include "text/generative_tokenizer_files.h"

namespace mmfuse {

namespace fs = std::filesystem;

std::unique_ptr<CausalLm> CausalLm::load(const fs::path& dir, std::shared_ptr<ThreadPool> pool,
                                         const fs::path& merge_adapter, Precision precision) {
  MMFUSE_CHECK(fs::is_directory(dir), not_found, dir.string() + ": model folder not found");
  std::unique_ptr<CausalLm> m(new CausalLm());
  m->pool_ = pool_or_own(std::move(pool));
  m->name_ = fs::absolute(dir).lexically_normal().filename().string();
  if (m->name_.empty())
    m->name_ = fs::absolute(dir).lexically_normal().parent_path().filename().string();
  const fs::path config_path = dir / "config.json";
  const nlohmann::json config = read_json_file(config_path);
  m->model_type_ = JsonFields(config, config_path.string()).string("model_type", "llama");
  m->tokenizer_ = load_generative_tokenizer(dir);
  m->store_ = WeightStore::open_folder(dir, decoder_weight_residency(precision));
  m->store_->set_decoder_precision(precision, m->pool_);
  if (!merge_adapter.empty())
    merge_lora_into(*read_lora_adapter(merge_adapter, *m->store_), *m->store_);
  if (m->model_type_ == "opt") {
    m->decoder_ = std::make_unique<OptModel>(
        *m->store_, OptConfig::from_json(config, config_path.string()), "", m->pool_, m->name_);
    m->layers_prefix_ = m->store_->has("decoder.embed_tokens.weight") ? "decoder.layers."
                                                                        : "model.decoder.layers.";
  } else {
    m->decoder_ = std::make_unique<LlamaModel>(
        *m->store_, LlamaConfig::from_json(config, config_path.string()), "", m->pool_, m->name_);
    m->layers_prefix_ = "model.layers.";
  }
  m->chat_template_ = text::read_chat_template(dir);
  m->generation_ = load_generation_config(dir);
  return m;
}

PromptInput CausalLm::prepare(const std::string& prompt, const std::vector<Image>& images,
                              const LoraAdapter*) const {
  MMFUSE_CHECK(images.empty(), bad_input,
               name_ + " is a text-only model (model_type " + model_type_ + "); it takes no images");
  PromptInput input;
  input.context_ids = tokenizer_->encode(prompt, true);
  input.segments.push_back({input.context_ids, {}, 0});
  return input;
}

std::shared_ptr<const LoraAdapter> CausalLm::load_adapter(const fs::path& dir) const {
  std::shared_ptr<LoraAdapter> adapter = read_lora_adapter(dir, *store_);
  MMFUSE_CHECK(adapter->replaced_tensors.empty(), unsupported,
               dir.string() + ": modules_to_save replace whole layers; such an adapter can only be "
                              "merged at load (generate --adapter), not served unmerged");
  for (const auto& [module, lora] : adapter->modules)
    MMFUSE_CHECK(module.rfind(layers_prefix_, 0) == 0, unsupported,
                 dir.string() + ": a LoRA update of \"" + module +
                     "\" cannot be served unmerged; merge the adapter at load instead");
  return adapter;
}

}  // namespace mmfuse
