// Opens the tokenizer of a generative model folder, chosen by the files the
// folder has: tokenizer.model -> LlamaTokenizer, spiece.model -> T5Tokenizer
// (both SentencePiece), vocab.json (+ merges.txt) -> GPT2Tokenizer (byte-level
// BPE: OPT, GPT-2). CLIP folders also hold vocab.json + merges.txt, so a
// vocab.json folder counts as GPT-2 only when tokenizer_config.json's
// tokenizer_class is GPT2Tokenizer(Fast), or, without that key, when
// config.json's model_type is opt / gpt2 (or a BLIP-2 / InstructBLIP folder
// whose text_config is OPT). load_generative_tokenizer also reads a vocab.json
// folder that names no tokenizer_class at all as GPT-2.
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
