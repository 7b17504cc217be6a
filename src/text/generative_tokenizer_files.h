// Opens the tokenizer of a generative model folder, chosen by the files the
// folder has: tokenizer.model -> LlamaTokenizer, spiece.model -> T5Tokenizer
// (both SentencePiece). GPT-2 byte-level BPE (vocab.json + merges.txt, OPT)
// is the next kind to add here.
#pragma once

#include <filesystem>
#include <memory>

#include "text/generative_tokenizer.h"

namespace mmfuse {

// True when `dir` holds a tokenizer load_generative_tokenizer reads.
bool has_generative_tokenizer(const std::filesystem::path& dir);

// The folder's tokenizer. Throws not_found naming the files looked for when it
// has none, bad_input naming the file when one is corrupt.
std::unique_ptr<GenerativeTokenizer> load_generative_tokenizer(const std::filesystem::path& dir);

}  // namespace mmfuse
