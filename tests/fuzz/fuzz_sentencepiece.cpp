// Fuzzes the SentencePiece tokenizers (Llama legacy=false, T5) on arbitrary
// bytes as text and as token ids, and the model loader on a corrupted copy of
// the LLaVA tokenizer.model. The reference folders are read from tests/fixtures
// (MMFUSE_FIXTURES, set by tests/fuzz/CMakeLists.txt).
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "mmfuse/error.h"
#include "text/generative_tokenizer_files.h"

namespace {

namespace fs = std::filesystem;
const fs::path kFixtures = MMFUSE_FIXTURES;

const mmfuse::GenerativeTokenizer& tokenizer(bool t5) {
  static const auto llama =
      mmfuse::load_generative_tokenizer(kFixtures / "llava/models/llava-1.5-tiny");
  static const auto t5_tok = mmfuse::load_generative_tokenizer(kFixtures / "t5_tokenizer");
  return t5 ? *t5_tok : *llama;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<int32_t> ids(size / 4);
  if (!ids.empty()) std::memcpy(ids.data(), data, ids.size() * 4);
  for (bool t5 : {false, true}) {
    const mmfuse::GenerativeTokenizer& tok = tokenizer(t5);
    try {
      (void)tok.decode(tok.encode(text), false);
      (void)tok.decode(tok.encode(text, false), true);
    } catch (const mmfuse::Error&) {
    }
    try {  // arbitrary ids: out-of-range ones are a bad_input error
      (void)tok.decode(ids, size % 2 == 0);
    } catch (const mmfuse::Error&) {
    }
  }
  // The same bytes overwrite part of a real model (small inputs only: it is written to disk).
  if (size > 4 && size < 4096) {
    static const std::string model = [] {
      std::ifstream in(kFixtures / "llava/models/llava-1.5-tiny/tokenizer.model", std::ios::binary);
      return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }();
    static const fs::path dir = [] {
      auto d =
          fs::temp_directory_path() / ("mmfuse_fuzz_sentencepiece_" + std::to_string(::getpid()));
      fs::create_directories(d);
      return d;
    }();
    std::string bytes = model;
    uint32_t at = 0;
    std::memcpy(&at, data, 4);
    const size_t start = model.empty() ? 0 : at % model.size();
    bytes.replace(start, std::min(size - 4, bytes.size() - start), text.substr(4));
    if (data[0] & 1) bytes.resize(start + size);  // also truncated
    std::ofstream(dir / "tokenizer.model", std::ios::binary | std::ios::trunc) << bytes;
    try {
      (void)mmfuse::load_generative_tokenizer(dir)->encode("USER: <image>\nhi");
    } catch (const mmfuse::Error&) {
    }
  }
  return 0;
}
