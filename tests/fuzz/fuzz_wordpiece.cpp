// Fuzzes the WordPiece tokenizer on arbitrary bytes as text (invalid UTF-8,
// control characters, special-token strings), and vocab.txt parsing.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "mmfuse/error.h"
#include "text/wordpiece_tokenizer.h"

namespace {

std::filesystem::path write_folder(const std::string& name, const std::string& vocab) {
  const auto dir = std::filesystem::temp_directory_path() / (name + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "vocab.txt", std::ios::binary) << vocab;
  return dir;
}

const mmfuse::WordPieceTokenizer& tokenizer() {
  static const mmfuse::WordPieceTokenizer tok = mmfuse::WordPieceTokenizer::from_folder(write_folder(
      "mmfuse_fuzz_wordpiece_",
      "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nun\n##aff\n##able\na\n##b\n,\n猫\n!\n##猫\ncafe\n"));
  return tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    (void)tokenizer().encode_batch({text, text}, 16);
    (void)tokenizer().encode_pairs({text}, {"a"}, 8, /*pad=*/false);
  } catch (const mmfuse::Error&) {
  }
  // The same bytes as a vocabulary (small inputs only: it is written to disk).
  if (size < 4096) {
    static const auto dir = write_folder("mmfuse_fuzz_wordpiece_vocab_", "");
    std::ofstream(dir / "vocab.txt", std::ios::binary | std::ios::trunc) << text;
    try {
      (void)mmfuse::WordPieceTokenizer::from_folder(dir).encode("a,猫 [CLS]");
    } catch (const mmfuse::Error&) {
    }
  }
  return 0;
}
