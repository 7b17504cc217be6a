// The model registry: config.json's model_type (and architectures[]) -> what
// the architecture can do and how to open it. Every command, the server and
// the public API pick architectures here; adding one is one model file plus
// one entry in registry.cpp (as llama.cpp's arch table, faiss's index factory).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/precision.h"
#include "core/thread_pool.h"

namespace mmfuse {

class DualEncoder;
class BertModel;
class Wav2Vec2ForCtc;
class SoundCnnLstm;
class GenerativeModel;

// What an architecture offers; an entry holds a bit set of these.
enum class Capability : uint32_t {
  embed_text = 1u << 0,      // texts -> vectors
  embed_image = 1u << 1,     // images -> vectors in the text space (zero-shot classification)
  transcribe = 1u << 2,      // speech -> CTC logits (transcription, forced alignment)
  classify_sound = 1u << 3,  // a sound clip -> normal / fault classes
  detect_sound = 1u << 4,    // a sound clip -> anomaly score against a threshold
  generate = 1u << 5,        // prompt (text, images) -> text (LLaVA, Llama)
  image_features = 1u << 6,  // photo -> feature maps (image fit --backbone: timm ResNets)
};
const char* to_string(Capability capability);

// The tokenizer files an architecture reads.
enum class TokenizerKind { none, byte_level_bpe, wordpiece, ctc_characters, sentencepiece };

struct Architecture {
  std::string model_type;                  // config.json "model_type"
  std::vector<std::string> architectures;  // config.json "architectures" class names it serves
  uint32_t capabilities = 0;
  TokenizerKind tokenizer = TokenizerKind::none;
  std::string description;  // one line for `mmfuse models` and /v1/models

  // Openers; null when the architecture does not have that kind of model.
  // `pool` is the threads the model computes with (null: a pool of its own);
  // `precision` the arithmetic of the encoder layers (--dtype; f32 = exact).
  std::unique_ptr<DualEncoder> (*open_dual_encoder)(const std::filesystem::path& dir,
                                                    std::shared_ptr<ThreadPool> pool,
                                                    Precision precision) = nullptr;
  std::unique_ptr<BertModel> (*open_text_encoder)(const std::filesystem::path& dir,
                                                  std::shared_ptr<ThreadPool> pool,
                                                  Precision precision) = nullptr;
  std::unique_ptr<Wav2Vec2ForCtc> (*open_ctc)(const std::filesystem::path& dir,
                                              Precision precision) = nullptr;
  std::unique_ptr<SoundCnnLstm> (*open_sound_classifier)(const std::filesystem::path& dir) =
      nullptr;
  // `merge_adapter` (may be empty): a PEFT LoRA folder merged into the weights at load;
  // `precision` the language model's weights (f32: as stored; int8: q8_0).
  std::unique_ptr<GenerativeModel> (*open_generative)(const std::filesystem::path& dir,
                                                     std::shared_ptr<ThreadPool> pool,
                                                     const std::filesystem::path& merge_adapter,
                                                     Precision precision) = nullptr;
  // The token count texts are padded/cut to by default (config.json given).
  size_t (*text_context_length)(const nlohmann::json& config, const std::string& where) = nullptr;

  bool can(Capability c) const { return (capabilities & static_cast<uint32_t>(c)) != 0; }
  std::vector<std::string> capability_names() const;
};

// Every registered architecture, in a fixed order.
const std::vector<Architecture>& registered_architectures();

// The entry for a parsed config.json (`where` names the file in errors):
// model_type first, then the architectures[] class names. Throws
// unsupported naming the model_type and the supported ones.
const Architecture& architecture_for(const nlohmann::json& config, const std::string& where);

// Reads dir/config.json and returns its entry. Throws not_found for a missing
// folder or config.json.
const Architecture& architecture_of(const std::filesystem::path& dir);

// As architecture_of, and checks that the architecture can do `needed`;
// otherwise throws unsupported naming the file, the model_type, what `purpose`
// needed, and the model_types that can.
const Architecture& architecture_with(const std::filesystem::path& dir, Capability needed,
                                      const std::string& purpose);

// Shortcuts through the registry.
std::unique_ptr<DualEncoder> open_dual_encoder(const std::filesystem::path& dir,
                                               std::shared_ptr<ThreadPool> pool = nullptr,
                                               Precision precision = Precision::f32);
std::unique_ptr<Wav2Vec2ForCtc> open_ctc_model(const std::filesystem::path& dir,
                                               Precision precision = Precision::f32);
// A folder whose architecture can `generate` (unsupported otherwise), computing
// on `pool` (null: a pool of its own), with `merge_adapter` (a PEFT LoRA folder)
// merged into its weights when given, its language model's weights as stored
// (f32) or quantised to q8_0 (int8; bf16 is unsupported).
std::unique_ptr<GenerativeModel> open_generative_model(
    const std::filesystem::path& dir, std::shared_ptr<ThreadPool> pool = nullptr,
    const std::filesystem::path& merge_adapter = {}, Precision precision = Precision::f32);

}  // namespace mmfuse
