#include "models/kv_cache.h"

#include <algorithm>

#include "mmfuse/error.h"

namespace mmfuse {

size_t KvCacheState::cache_bytes() const {
  size_t n = 0;
  for (size_t i = 0; i < k.size(); ++i) n += (k[i].size() + v[i].size()) * sizeof(float);
  return n;
}

std::vector<float> embed_prompt_segments(const PromptInput& prompt, size_t width,
                                         const std::function<void(int32_t, float*)>& embed) {
  std::vector<float> x(prompt.length() * width);
  size_t row = 0;
  for (const PromptSegment& seg : prompt.segments) {
    if (seg.rows > 0) {
      MMFUSE_CHECK(seg.embeddings.size() == seg.rows * width, bad_input,
                   "a prompt segment's embeddings are not rows x " + std::to_string(width));
      std::copy(seg.embeddings.begin(), seg.embeddings.end(),
                x.begin() + static_cast<long>(row * width));
      row += seg.rows;
    } else {
      for (int32_t id : seg.ids) embed(id, &x[row++ * width]);
    }
  }
  return x;
}

}  // namespace mmfuse
