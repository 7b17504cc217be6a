#include "models/llama_for_causal_lm.h"

#include "mmfuse/error.h"
#include "models/lora.h"
#include "text/chat_template_file.h"
#include "text/generative_tokenizer_files.h"

namespace mmfuse {

namespace fs = std::filesystem;

std::unique_ptr<LlamaForCausalLm> LlamaForCausalLm::load(const fs::path& dir,
                                                         std::shared_ptr<ThreadPool> pool,
                                                         const fs::path& merge_adapter) {
  MMFUSE_CHECK(fs::is_directory(dir), not_found, dir.string() + ": model folder not found");
  std::unique_ptr<LlamaForCausalLm> m(new LlamaForCausalLm());
  m->pool_ = pool_or_own(std::move(pool));
  m->name_ = fs::absolute(dir).lexically_normal().filename().string();
  if (m->name_.empty())
    m->name_ = fs::absolute(dir).lexically_normal().parent_path().filename().string();
  const fs::path config_path = dir / "config.json";
  const LlamaConfig config = LlamaConfig::from_json(read_json_file(config_path), config_path.string());
  m->tokenizer_ = load_generative_tokenizer(dir);
  m->store_ = WeightStore::open_folder(dir, streamed_weight_residency());
  if (!merge_adapter.empty())
    merge_lora_into(*read_lora_adapter(merge_adapter, *m->store_), *m->store_);
  m->llama_ = std::make_unique<LlamaModel>(*m->store_, config, "", m->pool_, m->name_);
  m->chat_template_ = text::read_chat_template(dir);
  m->generation_ = load_generation_config(dir);
  return m;
}

PromptInput LlamaForCausalLm::prepare(const std::string& prompt, const std::vector<Image>& images,
                                      const LoraAdapter*) const {
  MMFUSE_CHECK(images.empty(), bad_input,
               name_ + " is a text-only model (model_type llama); it takes no images");
  PromptInput input;
  input.context_ids = tokenizer_->encode(prompt, true);
  input.segments.push_back({input.context_ids, {}, 0});
  return input;
}

std::shared_ptr<const LoraAdapter> LlamaForCausalLm::load_adapter(const fs::path& dir) const {
  std::shared_ptr<LoraAdapter> adapter = read_lora_adapter(dir, *store_);
  MMFUSE_CHECK(adapter->replaced_tensors.empty(), unsupported,
               dir.string() + ": modules_to_save replace whole layers; such an adapter can only be "
                              "merged at load (generate --adapter), not served unmerged");
  for (const auto& [module, lora] : adapter->modules)
    MMFUSE_CHECK(module.rfind("model.layers.", 0) == 0, unsupported,
                 dir.string() + ": a LoRA update of \"" + module +
                     "\" cannot be served unmerged; merge the adapter at load instead");
  return adapter;
}

}  // namespace mmfuse
