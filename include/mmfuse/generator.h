// mmfuse public API: text (and image) generation with a Hugging Face LLaVA-1.5
// or Llama folder, as transformers' processor + generate compute it.
//
//   auto llava = mmfuse::Generator::open("models/llava-hf--llava-1.5-7b-hf");
//   auto answer = llava->chat({{"user", "What is wrong with this pump?", {"pump.jpg"}}});
//   std::cout << answer.text;
//
// Thread-safety: any number of threads may call one Generator at once; each
// call's result equals a call made alone (greedy and beam search exactly,
// sampling for a given seed). The weights are read-only after open().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mmfuse/error.h"
#include "mmfuse/thread_pool.h"

namespace mmfuse {

// Decoding settings over the folder's generation_config.json; unset = the folder's.
struct GenerationSettings {
  std::optional<int> max_new_tokens;
  std::optional<int> num_beams;  // > 1: beam search
  std::optional<bool> do_sample;
  std::optional<float> temperature, top_p, min_p, repetition_penalty;
  std::optional<float> length_penalty;  // beam search
  std::optional<int> top_k, no_repeat_ngram_size;
  std::optional<uint64_t> seed;   // sampling (mmfuse's own generator, not PyTorch's stream)
  std::vector<std::string> stop;  // the answer ends before the first of these
};

struct ChatTurn {
  std::string role;                      // "system", "user", "assistant"
  std::string text;
  std::vector<std::string> image_paths;  // images shown with this turn (LLaVA)
};

struct Generated {
  std::string text;             // the answer, special tokens skipped, cut before a stop string
  std::vector<int32_t> tokens;  // the new token ids
  size_t prompt_tokens = 0;     // positions the model read for the prompt (image rows included)
  std::string finish_reason;    // "stop", "length" or "cancelled"
};

// Receives the answer as it is generated (UTF-8-safe pieces; they add up to
// Generated::text). Return false to stop the generation.
using TextCallback = std::function<bool(const std::string& piece)>;

class MMFUSE_API Generator {
 public:
  virtual ~Generator() = default;

  // Opens a generative folder (config.json model_type "llava" or "llama").
  // `adapter_dir` (optional) is a PEFT LoRA adapter merged into the weights.
  // Computes on `pool` (null: a pool of all cores). Throws mmfuse::Error naming
  // the bad file, tensor or field.
  static std::unique_ptr<Generator> open(const std::string& model_dir,
                                         std::shared_ptr<ThreadPool> pool = nullptr,
                                         const std::string& adapter_dir = "");

  virtual const std::string& name() const = 0;
  virtual bool takes_images() const = 0;

  // `prompt` goes to the processor as is (LLaVA: one "<image>" per image file,
  // in order). Streaming (on_text) needs greedy or sampling decoding.
  virtual Generated generate(const std::string& prompt,
                             const std::vector<std::string>& image_paths = {},
                             const GenerationSettings& settings = {},
                             const TextCallback& on_text = nullptr) const = 0;
  // The conversation through the folder's chat template, answered as the
  // assistant's next turn.
  virtual Generated chat(const std::vector<ChatTurn>& turns,
                         const GenerationSettings& settings = {},
                         const TextCallback& on_text = nullptr) const = 0;
};

}  // namespace mmfuse
