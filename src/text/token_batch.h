// The tokenised inputs of a batch of texts, as a Hugging Face tokenizer call
// returns them (input_ids, attention_mask and, for BERT-style models, token_type_ids).
#pragma once

#include <cstdint>
#include <vector>

namespace mmfuse {

struct TokenBatch {  // one row per text; padded batches have rows of one length
  std::vector<std::vector<int64_t>> input_ids;
  std::vector<std::vector<int64_t>> attention_mask;
  std::vector<std::vector<int64_t>> token_type_ids;  // segment ids (WordPiece); empty for CLIP
};

}  // namespace mmfuse
