// The table of architectures. One entry per model_type; the openers are the
// model files' own load functions.
#include "models/registry.h"

#include <algorithm>
#include <optional>

#include "io/model_folder.h"
#include "mmfuse/error.h"
#include "models/bert.h"
#include "models/chinese_clip.h"
#include "models/clip.h"
#include "models/causal_lm.h"
#include "models/blip2.h"
#include "models/llava.h"
#include "models/sound_cnn_lstm.h"
#include "models/timm_resnet.h"
#include "models/wav2vec2.h"

namespace mmfuse {

namespace fs = std::filesystem;

namespace {

constexpr uint32_t operator|(Capability a, Capability b) {
  return static_cast<uint32_t>(a) | static_cast<uint32_t>(b);
}

// max_position_embeddings of the text tower's config (text_config, else the top level).
size_t text_positions(const nlohmann::json& config, const std::string& where, int64_t fallback) {
  const bool nested = config.contains("text_config") && config["text_config"].is_object();
  const nlohmann::json& text = nested ? config["text_config"] : config;
  return static_cast<size_t>(
      std::max<int64_t>(1, JsonFields(text, nested ? where + " text_config" : where)
                               .integer("max_position_embeddings", fallback)));
}

std::vector<Architecture> build_table() {
  std::vector<Architecture> table;

  Architecture clip;
  clip.model_type = "clip";
  clip.architectures = {"CLIPModel"};
  clip.capabilities = Capability::embed_text | Capability::embed_image;
  clip.tokenizer = TokenizerKind::byte_level_bpe;
  clip.description = "CLIP text and image towers in one space (HF CLIPModel)";
  clip.open_dual_encoder = [](const fs::path& dir, std::shared_ptr<ThreadPool> pool,
                              Precision precision) {
    return std::unique_ptr<DualEncoder>(ClipModel::load(dir, std::move(pool), precision));
  };
  clip.text_context_length = [](const nlohmann::json& config, const std::string& where) {
    return text_positions(config, where, 77);
  };
  table.push_back(std::move(clip));

  Architecture chinese_clip;
  chinese_clip.model_type = "chinese_clip";
  chinese_clip.architectures = {"ChineseCLIPModel"};
  chinese_clip.capabilities = Capability::embed_text | Capability::embed_image;
  chinese_clip.tokenizer = TokenizerKind::wordpiece;
  chinese_clip.description = "Chinese-CLIP: a BERT text tower and a CLIP ViT (HF ChineseCLIPModel)";
  chinese_clip.open_dual_encoder = [](const fs::path& dir, std::shared_ptr<ThreadPool> pool,
                                      Precision precision) {
    return std::unique_ptr<DualEncoder>(ChineseClipModel::load(dir, std::move(pool), precision));
  };
  chinese_clip.text_context_length = [](const nlohmann::json& config, const std::string& where) {
    return std::min(ChineseClipModel::kContextLength, text_positions(config, where, 512));
  };
  table.push_back(std::move(chinese_clip));

  Architecture bert;
  bert.model_type = "bert";
  bert.architectures = {"BertModel", "BertForMaskedLM", "BertForPreTraining"};
  bert.capabilities = static_cast<uint32_t>(Capability::embed_text);
  bert.tokenizer = TokenizerKind::wordpiece;
  bert.description = "BERT text encoder, pooled at [CLS], mean or the pooler (HF BertModel)";
  bert.open_text_encoder = [](const fs::path& dir, std::shared_ptr<ThreadPool> pool,
                              Precision precision) {
    return BertModel::load(dir, std::move(pool), precision);
  };
  bert.text_context_length = [](const nlohmann::json& config, const std::string& where) {
    return text_positions(config, where, 512);
  };
  table.push_back(std::move(bert));

  Architecture wav2vec2;
  wav2vec2.model_type = "wav2vec2";
  wav2vec2.architectures = {"Wav2Vec2ForCTC"};
  wav2vec2.capabilities = static_cast<uint32_t>(Capability::transcribe);
  wav2vec2.tokenizer = TokenizerKind::ctc_characters;
  wav2vec2.description = "wav2vec2 speech encoder with a CTC head (HF Wav2Vec2ForCTC)";
  wav2vec2.open_ctc = [](const fs::path& dir, Precision precision) {
    return Wav2Vec2ForCtc::load(dir, precision);
  };
  table.push_back(std::move(wav2vec2));

  Architecture sound_cnn_lstm;
  sound_cnn_lstm.model_type = "sound_cnn_lstm";
  sound_cnn_lstm.capabilities = Capability::classify_sound | Capability::detect_sound;
  sound_cnn_lstm.description = "MFCC -> Conv1d -> LSTM sound classifier (the chapter's CNN+LSTM)";
  sound_cnn_lstm.open_sound_classifier = [](const fs::path& dir) {
    return SoundCnnLstm::load(dir);
  };
  table.push_back(std::move(sound_cnn_lstm));

  Architecture llava;
  llava.model_type = "llava";
  llava.architectures = {"LlavaForConditionalGeneration"};
  llava.capabilities = static_cast<uint32_t>(Capability::generate);
  llava.tokenizer = TokenizerKind::sentencepiece;
  llava.description = "LLaVA-1.5: CLIP vision tower + MLP projector + Llama (HF LlavaForConditionalGeneration)";
  llava.open_generative = [](const fs::path& dir, std::shared_ptr<ThreadPool> pool,
                             const fs::path& adapter, Precision precision) {
    return std::unique_ptr<GenerativeModel>(LlavaModel::load(dir, std::move(pool), adapter, precision));
  };
  llava.text_context_length = [](const nlohmann::json& config, const std::string& where) {
    return text_positions(config, where, 2048);
  };
  table.push_back(std::move(llava));

  Architecture blip2;
  blip2.model_type = "blip-2";
  blip2.architectures = {"Blip2ForConditionalGeneration"};
  blip2.capabilities = static_cast<uint32_t>(Capability::generate);
  blip2.tokenizer = TokenizerKind::none;  // OPT's byte-level BPE or T5's SentencePiece: by files
  blip2.description =
      "BLIP-2: ViT + Q-Former + OPT or Flan-T5, captions and visual questions (HF "
      "Blip2ForConditionalGeneration)";
  blip2.open_generative = [](const fs::path& dir, std::shared_ptr<ThreadPool> pool,
                             const fs::path& adapter, Precision precision) {
    return std::unique_ptr<GenerativeModel>(Blip2Model::load(dir, std::move(pool), adapter, precision));
  };
  table.push_back(std::move(blip2));

  Architecture llama;
  llama.model_type = "llama";
  llama.architectures = {"LlamaForCausalLM"};
  llama.capabilities = static_cast<uint32_t>(Capability::generate);
  llama.tokenizer = TokenizerKind::sentencepiece;
  llama.description = "Llama decoder: Llama-2/3, TinyLlama, Vicuna (HF LlamaForCausalLM)";
  llama.open_generative = [](const fs::path& dir, std::shared_ptr<ThreadPool> pool,
                             const fs::path& adapter, Precision precision) {
    return std::unique_ptr<GenerativeModel>(CausalLm::load(dir, std::move(pool), adapter, precision));
  };
  llama.text_context_length = [](const nlohmann::json& config, const std::string& where) {
    return text_positions(config, where, 2048);
  };
  table.push_back(std::move(llama));

  Architecture opt;
  opt.model_type = "opt";
  opt.architectures = {"OPTForCausalLM"};
  opt.capabilities = static_cast<uint32_t>(Capability::generate);
  opt.tokenizer = TokenizerKind::none;  // GPT-2 byte-level BPE, read by load_generative_tokenizer
  opt.description = "OPT decoder: facebook/opt-* (HF OPTForCausalLM)";
  opt.open_generative = [](const fs::path& dir, std::shared_ptr<ThreadPool> pool,
                           const fs::path& adapter, Precision precision) {
    return std::unique_ptr<GenerativeModel>(CausalLm::load(dir, std::move(pool), adapter, precision));
  };
  opt.text_context_length = [](const nlohmann::json& config, const std::string& where) {
    return text_positions(config, where, 2048);
  };
  table.push_back(std::move(opt));

  // Fitted by `mmfuse sound fit` on normal clips; opened by SoundDetector.
  Architecture sound_gaussian;
  sound_gaussian.model_type = "sound_gaussian";
  sound_gaussian.capabilities = static_cast<uint32_t>(Capability::detect_sound);
  sound_gaussian.description = "per-frame Gaussian of MFCC features fitted on normal sounds";
  table.push_back(std::move(sound_gaussian));

  // timm's hub folders have no model_type, only "architecture" (architecture_for
  // recognises them); opened by `image fit --backbone` (detect/backbone_features).
  Architecture timm_resnet;
  timm_resnet.model_type = "timm_resnet";
  timm_resnet.architectures = {"resnet18",  "resnet34",        "resnet50",        "resnet101",
                               "resnet152", "wide_resnet50_2", "wide_resnet101_2"};
  timm_resnet.capabilities = static_cast<uint32_t>(Capability::image_features);
  timm_resnet.description =
      "timm ResNet / WideResNet feature maps (image fit --backbone, Anomalib's PatchCore backbone)";
  table.push_back(std::move(timm_resnet));

  return table;
}

// The registered model_types, comma-separated; with `needed`, only those that can do it.
std::string supported_types(std::optional<Capability> needed = std::nullopt) {
  std::string out;
  for (const Architecture& a : registered_architectures()) {
    if (needed && !a.can(*needed)) continue;
    out += (out.empty() ? "" : ", ") + a.model_type;
  }
  return out;
}

}  // namespace

const char* to_string(Capability capability) {
  switch (capability) {
    case Capability::embed_text: return "embed_text";
    case Capability::embed_image: return "embed_image";
    case Capability::transcribe: return "transcribe";
    case Capability::classify_sound: return "classify_sound";
    case Capability::detect_sound: return "detect_sound";
    case Capability::generate: return "generate";
    case Capability::image_features: return "image_features";
  }
  return "unknown";
}

std::vector<std::string> Architecture::capability_names() const {
  std::vector<std::string> out;
  for (Capability c : {Capability::embed_text, Capability::embed_image, Capability::transcribe,
                       Capability::classify_sound, Capability::detect_sound, Capability::generate,
                       Capability::image_features})
    if (can(c)) out.emplace_back(to_string(c));
  return out;
}

const std::vector<Architecture>& registered_architectures() {
  static const std::vector<Architecture> table = build_table();
  return table;
}

const Architecture& architecture_for(const nlohmann::json& config, const std::string& where) {
  MMFUSE_CHECK(config.is_object(), bad_input, where + ": not a JSON object");
  const std::string type = JsonFields(config, where).string("model_type", "");
  for (const Architecture& a : registered_architectures())
    if (!type.empty() && a.model_type == type) return a;
  // Older folders name only the class.
  if (type.empty() && config.contains("architectures") && config["architectures"].is_array()) {
    for (const auto& name : config["architectures"]) {
      if (!name.is_string()) continue;
      for (const Architecture& a : registered_architectures())
        if (std::find(a.architectures.begin(), a.architectures.end(), name.get<std::string>()) !=
            a.architectures.end())
          return a;
    }
  }
  // timm's own config.json: {"architecture": "wide_resnet50_2", "pretrained_cfg": ...}.
  if (type.empty() && is_timm_resnet_config(config))
    for (const Architecture& a : registered_architectures())
      if (a.model_type == "timm_resnet") return a;
  throw_error(ErrorKind::unsupported,
              where + ": " +
                  (type.empty() ? "no model_type" : "unsupported model_type \"" + type + "\"") +
                  " (supported: " + supported_types() + ")");
}

const Architecture& architecture_of(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw_error(fs::exists(dir, ec) ? ErrorKind::bad_input : ErrorKind::not_found,
                dir.string() + (fs::exists(dir, ec)
                                    ? ": not a model folder (expected config.json and weights)"
                                    : ": model folder not found"));
  const fs::path config_path = dir / "config.json";
  return architecture_for(read_json_file(config_path), config_path.string());
}

const Architecture& architecture_with(const fs::path& dir, Capability needed,
                                      const std::string& purpose) {
  const Architecture& a = architecture_of(dir);
  const bool text_only = needed == Capability::embed_image && a.can(Capability::embed_text);
  MMFUSE_CHECK(a.can(needed), unsupported,
               (dir / "config.json").string() + ": model_type \"" + a.model_type + "\" cannot " +
                   purpose + (text_only ? " (a text-only encoder)" : "") +
                   "; model types that can: " + supported_types(needed));
  return a;
}

std::unique_ptr<DualEncoder> open_dual_encoder(const fs::path& dir,
                                               std::shared_ptr<ThreadPool> pool,
                                               Precision precision) {
  const Architecture& a = architecture_with(dir, Capability::embed_image, "embed images");
  return a.open_dual_encoder(dir, std::move(pool), precision);
}

std::unique_ptr<Wav2Vec2ForCtc> open_ctc_model(const fs::path& dir, Precision precision) {
  const Architecture& a = architecture_with(dir, Capability::transcribe, "transcribe speech");
  return a.open_ctc(dir, precision);
}

std::unique_ptr<GenerativeModel> open_generative_model(const fs::path& dir,
                                                       std::shared_ptr<ThreadPool> pool,
                                                       const fs::path& merge_adapter,
                                                       Precision precision) {
  const Architecture& a = architecture_with(dir, Capability::generate, "generate text");
  return a.open_generative(dir, std::move(pool), merge_adapter, precision);
}

}  // namespace mmfuse
