// Pieces every decoder in src/models shares: the per-sequence key/value cache
// (a DecoderState) and the flattening of a prompt's segments into embedding
// rows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "models/language_model.h"

namespace mmfuse {

// One sequence's keys and values per layer, [positions, kv width] each; the
// unmerged LoRA adapter it was started with (null: none).
class KvCacheState : public DecoderState {
 public:
  explicit KvCacheState(size_t layers) : k(layers), v(layers) {}
  std::unique_ptr<DecoderState> clone() const override {
    return std::make_unique<KvCacheState>(*this);
  }
  size_t positions() const override { return filled; }
  size_t cache_bytes() const override;

  std::vector<std::vector<float>> k, v;
  size_t filled = 0;
  const LoraAdapter* adapter = nullptr;
};

// The prompt as rows of `width` floats: segments of rows are copied, ids are
// looked up with `embed(id, row)`. A segment of the wrong width is bad_input.
std::vector<float> embed_prompt_segments(const PromptInput& prompt, size_t width,
                                         const std::function<void(int32_t, float*)>& embed);

}  // namespace mmfuse
