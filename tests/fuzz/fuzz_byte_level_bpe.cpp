// Fuzzes the GPT-2 byte-level BPE tokenizer (OPT) on arbitrary bytes as text
// and as token ids, and its loader and the CLIP tokenizer's on small
// vocab.json / merges.txt files made of the input (split at the first NUL
// byte). The OPT folder is read from tests/fixtures (MMFUSE_FIXTURES, set by
// tests/fuzz/CMakeLists.txt).
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "mmfuse/error.h"
#include "text/clip_tokenizer.h"
#include "text/generative_tokenizer_files.h"

namespace {

namespace fs = std::filesystem;
const fs::path kFixtures = MMFUSE_FIXTURES;

const mmfuse::GenerativeTokenizer& opt() {
  static const auto tok =
      mmfuse::load_generative_tokenizer(kFixtures / "blip2/models/blip2-opt-tiny");
  return *tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const mmfuse::GenerativeTokenizer& tok = opt();
  try {
    (void)tok.decode(tok.encode(text), false);
    (void)tok.decode(tok.encode(text, false), true);
    (void)tok.tokenize(text);
  } catch (const mmfuse::Error&) {
  }
  std::vector<int32_t> ids(size / 4);
  if (!ids.empty()) std::memcpy(ids.data(), data, ids.size() * 4);
  try {  // arbitrary ids: ones outside the vocabulary are a bad_input error
    (void)tok.decode(ids, size % 2 == 0);
  } catch (const mmfuse::Error&) {
  }
  // Small tokenizer files from the input (written to disk: small inputs only).
  if (size < 4096) {
    static const fs::path dir = [] {
      auto d = fs::temp_directory_path() / ("mmfuse_fuzz_bpe_" + std::to_string(::getpid()));
      fs::create_directories(d);
      std::ofstream(d / "tokenizer_config.json") << R"({"tokenizer_class": "GPT2Tokenizer"})";
      return d;
    }();
    const size_t cut = text.find('\0');
    const std::string vocab = cut == std::string::npos ? text : text.substr(0, cut);
    const std::string merges = cut == std::string::npos ? "#version\n" : text.substr(cut + 1);
    std::ofstream(dir / "vocab.json", std::ios::binary | std::ios::trunc) << vocab;
    std::ofstream(dir / "merges.txt", std::ios::binary | std::ios::trunc) << merges;
    try {
      const auto small = mmfuse::load_generative_tokenizer(dir);
      (void)small->decode(small->encode("hello world's 123 <|endoftext|>"), false);
    } catch (const mmfuse::Error&) {
    }
    try {  // the same files through the CLIP tokenizer's loader (SAX vocab.json reader)
      const mmfuse::ClipTokenizer clip = mmfuse::ClipTokenizer::from_folder(dir);
      (void)clip.encode("hello world's 123 <|endoftext|>");
    } catch (const mmfuse::Error&) {
    }
  }
  return 0;
}
