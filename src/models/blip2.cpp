#include "models/blip2.h"

#include "mmfuse/error.h"
#include "models/lora.h"
#include "models/opt.h"
#include "models/t5.h"
#include "text/chat_template_file.h"
#include "text/generative_tokenizer_files.h"

namespace mmfuse {

namespace fs = std::filesystem;

namespace {

const std::string kLanguagePrefix = "language_model.";

// BLIP-2's question-answer prompt (the format of the paper's VQA prompts and
// of LAVIS' multi-turn demo): "Question: q1 Answer: a1. Question: q2 Answer:".
// A lone user turn with no text is plain captioning: an empty prompt.
// The template loops over content parts, so the server passes image parts
// through to it (text parts are joined; images need no placeholder).
constexpr const char* kQuestionAnswerTemplate =
    "{%- for message in messages -%}\n"
    "{%- set ns = namespace(text='') -%}\n"
    "{%- if message.content is string -%}{%- set ns.text = message.content -%}\n"
    "{%- else -%}{%- for part in message.content -%}{%- if part.type == 'text' -%}"
    "{%- set ns.text = ns.text ~ (' ' if ns.text else '') ~ part.text -%}"
    "{%- endif -%}{%- endfor -%}{%- endif -%}\n"
    "{%- set text = ns.text | trim -%}\n"
    "{%- if message.role == 'system' -%}{%- if text %}{{ text ~ ' ' }}{% endif -%}\n"
    "{%- elif message.role == 'user' -%}\n"
    "{%- if text or loop.length > 1 %}{{ ('' if loop.first else ' ') ~ 'Question: ' ~ text ~ "
    "' Answer:' }}{% endif -%}\n"
    "{%- elif message.role == 'assistant' -%}{{ ' ' ~ text ~ '.' }}\n"
    "{%- endif -%}\n"
    "{%- endfor -%}\n";

// The language model's generation config, as Blip2ForConditionalGeneration
// builds it: GenerationConfig.from_model_config(text_config).
GenerationConfig text_generation_config(const Blip2Config& config, const std::string& where) {
  GenerationConfig g;
  apply_generation_json(g, config.text_config, where + " text_config");
  if (config.text_model_type == "opt") {
    // generate() adds the query rows to max_length minus the BOS it puts back
    // in front, and transformers then takes the whole embedded prompt off
    // again: max_length - 1 - len(input_ids) new tokens. With the text ids as
    // context_ids, max_length - 1 gives that count.
    g.max_length = std::max(2, g.max_length - 1);
  }
  validate(g);
  return g;
}

}  // namespace

std::unique_ptr<Blip2Model> Blip2Model::load(const fs::path& dir, std::shared_ptr<ThreadPool> pool,
                                             const fs::path& merge_adapter, Precision precision) {
  MMFUSE_CHECK(fs::is_directory(dir), not_found, dir.string() + ": model folder not found");
  std::unique_ptr<Blip2Model> m(new Blip2Model());
  m->pool_ = pool_or_own(std::move(pool));
  m->name_ = fs::absolute(dir).lexically_normal().filename().string();
  if (m->name_.empty())
    m->name_ = fs::absolute(dir).lexically_normal().parent_path().filename().string();
  const fs::path config_path = dir / "config.json";
  m->config_ = Blip2Config::from_json(read_json_file(config_path), config_path.string());
  const Blip2Config& c = m->config_;
  MMFUSE_CHECK(!c.image_token_index.has_value(), unsupported,
               config_path.string() +
                   ": image_token_index is set (a transformers >= 4.46 folder whose processor "
                   "puts image tokens in input_ids); the 4.44 layout without it is supported");
  m->tokenizer_ = load_generative_tokenizer(dir);
  m->store_ = WeightStore::open_folder(dir, decoder_weight_residency(precision));
  WeightStore& store = *m->store_;
  if (!merge_adapter.empty()) merge_lora_into(*read_lora_adapter(merge_adapter, store), store);

  m->image_encoder_ = std::make_unique<Blip2ImageEncoder>(m->store_, c, m->pool_, dir);
  store.set_decoder_precision(precision, m->pool_);  // the language model's weights only
  const std::string text_where = config_path.string() + " text_config";
  if (c.text_model_type == "opt") {
    const OptConfig text = OptConfig::from_json(c.text_config, text_where);
    m->text_bos_token_id_ = text.bos_token_id;
    m->language_model_ =
        std::make_unique<OptModel>(store, text, kLanguagePrefix, m->pool_, m->name_);
  } else {
    const T5Config text = T5Config::from_json(c.text_config, text_where);
    m->text_bos_token_id_ = text.bos_token_id;
    m->language_model_ = std::make_unique<T5Model>(store, text, kLanguagePrefix, m->pool_, m->name_);
  }
  MMFUSE_CHECK(m->language_model_->hidden_size() == c.text_hidden_size, bad_input,
               config_path.string() + ": language_projection gives rows of " +
                   std::to_string(c.text_hidden_size) + " but the language model takes " +
                   std::to_string(m->language_model_->hidden_size()));
  m->chat_template_ = text::read_chat_template(dir);
  if (m->chat_template_.empty()) m->chat_template_ = kQuestionAnswerTemplate;
  m->generation_ = text_generation_config(c, config_path.string());
  return m;
}

PromptInput Blip2Model::prepare_ids(std::vector<int32_t> input_ids,
                                    const float* pixel_values) const {
  if (input_ids.empty()) {
    // No prompt: 4.44 feeds [[text_config.bos_token_id]] and fails when it is
    // unset; say which field instead.
    MMFUSE_CHECK(text_bos_token_id_ >= 0, bad_input,
                 name_ + ": captioning without a prompt needs text_config.bos_token_id");
    input_ids = {text_bos_token_id_};
  }
  PromptInput prompt;
  PromptSegment queries;
  queries.rows = image_encoder_->query_rows();
  queries.embeddings = image_encoder_->language_inputs(pixel_values, 1);
  prompt.segments.push_back(std::move(queries));
  PromptSegment text;
  text.ids = input_ids;
  prompt.segments.push_back(std::move(text));
  // What transformers' generate counts as the input: the text ids for OPT
  // (see text_generation_config), nothing for T5 (the decoder starts anew).
  if (language_model_->decoder_start_token() < 0) prompt.context_ids = std::move(input_ids);
  return prompt;
}

PromptInput Blip2Model::prepare(const std::string& prompt, const std::vector<Image>& images,
                                const LoraAdapter* adapter) const {
  MMFUSE_CHECK(adapter == nullptr, unsupported,
               name_ + ": BLIP-2 takes LoRA adapters merged at load only");
  MMFUSE_CHECK(images.size() == 1, bad_input,
               name_ + ": BLIP-2 takes exactly one image per prompt; " +
                   std::to_string(images.size()) + " were given");
  const std::vector<float> pixels = image_encoder_->pixel_values(images[0]);
  return prepare_ids(prompt.empty() ? std::vector<int32_t>{} : tokenizer_->encode(prompt, true),
                     pixels.data());
}

std::shared_ptr<const LoraAdapter> Blip2Model::load_adapter(const fs::path& dir) const {
  throw_error(ErrorKind::unsupported,
              dir.string() + ": BLIP-2 adapters cannot be served unmerged; merge it at load "
                             "(generate --adapter)");
}

}  // namespace mmfuse
