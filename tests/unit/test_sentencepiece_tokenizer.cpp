// SentencePiece tokenizers (Llama, T5) against transformers 4.44's slow
// LlamaTokenizer / T5Tokenizer: the 30 reference strings of
// tests/fixtures/llava/tokenizer_expected_llama.json (legacy=false and =true)
// and tests/fixtures/t5_tokenizer/tokenizer_expected_t5.json, the LLaVA
// prompts and generated texts of tests/fixtures/llava/outputs, and the errors.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "mmfuse/error.h"
#include "test_util.h"
#include "text/generative_tokenizer_files.h"
#include "text/sentencepiece_tokenizer.h"

namespace mmfuse {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::fixture;

const fs::path kLlavaDir = "llava/models/llava-1.5-tiny";

json read_json(const fs::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}

std::vector<int32_t> ids_of(const json& j) {
  return j.get<std::vector<int32_t>>();
}

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::temp_directory_path() /
           (name + "_" + std::to_string(reinterpret_cast<uintptr_t>(this)) + "_" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  void write(const std::string& name, const std::string& content) const {
    std::ofstream(path / name, std::ios::binary) << content;
  }
  // A copy of a folder's tokenizer files.
  void copy_from(const fs::path& dir) const {
    for (const auto& entry : fs::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      if (name.find("token") != std::string::npos || name == "spiece.model")
        fs::copy_file(entry.path(), path / name);
    }
  }
};

const GenerativeTokenizer& llama() {
  static const std::unique_ptr<GenerativeTokenizer> tok =
      load_generative_tokenizer(fixture(kLlavaDir.string()));
  return *tok;
}

const GenerativeTokenizer& t5() {
  static const std::unique_ptr<GenerativeTokenizer> tok =
      load_generative_tokenizer(fixture("t5_tokenizer"));
  return *tok;
}

void expect_reference_cases(const GenerativeTokenizer& tok, const fs::path& expected) {
  const json cases = read_json(expected)["cases"];
  ASSERT_EQ(cases.size(), 30u);
  for (const json& c : cases) {
    const std::string text = c["text"].get<std::string>();
    SCOPED_TRACE("text: " + c["text"].dump());
    EXPECT_EQ(tok.tokenize(text), c["tokens"].get<std::vector<std::string>>());
    const std::vector<int32_t> ids = tok.encode(text);
    EXPECT_EQ(ids, ids_of(c["ids"]));
    EXPECT_EQ(tok.encode(text, false), ids_of(c["ids_no_special"]));
    EXPECT_EQ(tok.decode(ids_of(c["ids"]), false), c["decoded"].get<std::string>());
    EXPECT_EQ(tok.decode(ids_of(c["ids"]), true), c["decoded_skip_special"].get<std::string>());
  }
}

TEST(SentencePieceTokenizer, LlamaMatchesReferenceStrings) {
  expect_reference_cases(llama(), fixture("llava/tokenizer_expected_llama.json"));
}

TEST(SentencePieceTokenizer, LlamaLegacyTrueMatchesReference) {
  TempDir dir("mmfuse_spm_legacy");
  dir.copy_from(fixture(kLlavaDir.string()));
  json config = read_json(dir.path / "tokenizer_config.json");
  ASSERT_EQ(config["legacy"], false);
  config["legacy"] = true;
  dir.write("tokenizer_config.json", config.dump(2));
  const auto tok = SentencePieceTokenizer::load(dir.path, SentencePieceFlavour::llama);
  EXPECT_TRUE(tok->legacy());
  int differing = 0;
  const json expected = read_json(fixture("llava/tokenizer_expected_llama.json"));
  for (const json& c : expected["cases"]) {
    SCOPED_TRACE("text: " + c["text"].dump());
    EXPECT_EQ(tok->encode(c["text"].get<std::string>()), ids_of(c["ids_legacy_true"]));
    differing += c["ids_legacy_true"] != c["ids"];
  }
  EXPECT_GT(differing, 0);  // the flag must matter on these strings

  // Without the key, 4.44 takes legacy=true.
  config.erase("legacy");
  dir.write("tokenizer_config.json", config.dump(2));
  EXPECT_TRUE(SentencePieceTokenizer::load(dir.path, SentencePieceFlavour::llama)->legacy());
}

TEST(SentencePieceTokenizer, T5MatchesReferenceStrings) {
  expect_reference_cases(t5(), fixture("t5_tokenizer/tokenizer_expected_t5.json"));
}

// The BLIP-2 Flan-T5 model folder (config.json, tokenizer files) reads the same
// T5Tokenizer: 100 sentinels at 32099 down to 32000, legacy=true as the key is
// absent, `</s>` appended.
TEST(SentencePieceTokenizer, Blip2FlanT5FolderMatchesReference) {
  const fs::path dir = fixture("blip2/models/blip2-flan-t5-tiny");
  ASSERT_TRUE(has_generative_tokenizer(dir));
  const auto tok = load_generative_tokenizer(dir);
  const auto* sp = dynamic_cast<const SentencePieceTokenizer*>(tok.get());
  ASSERT_NE(sp, nullptr);
  EXPECT_EQ(sp->flavour(), SentencePieceFlavour::t5);
  EXPECT_TRUE(sp->legacy());
  EXPECT_EQ(sp->vocab_size(), 32000u);
  EXPECT_EQ(tok->size(), 32100u);
  for (int i = 0; i < 100; ++i) {
    const int32_t id = tok->token_to_id("<extra_id_" + std::to_string(i) + ">");
    EXPECT_EQ(id, 32099 - i) << i;
    EXPECT_TRUE(tok->is_special(id)) << i;
  }
  EXPECT_EQ(tok->eos_id(), 1);
  EXPECT_EQ(tok->pad_id(), 0);
  expect_reference_cases(*tok, fixture("blip2/tokenizer_expected_t5.json"));
  // transformers' BLIP-2/T5 integration test.
  EXPECT_EQ(tok->decode({0, 2335, 1556, 28, 1782, 30, 8, 2608, 1}, true),
            "woman playing with dog on the beach");
}

TEST(SentencePieceTokenizer, LlavaPromptsAndGeneratedTexts) {
  int checked = 0;
  for (const char* model : {"llava-1.5-tiny", "llava-1.5-tiny-gqa", "llava-1.5-tiny-lora"}) {
    const json out = read_json(fixture(std::string("llava/outputs/") + model + "/outputs.json"));
    for (const json& c : out["cases"]) {
      const std::string text = c["text"].get<std::string>();
      SCOPED_TRACE(std::string(model) + " " + c["text"].dump());
      EXPECT_EQ(text, "USER: <image>\n" + c["user_prompt"].get<std::string>() + " ASSISTANT:");
      EXPECT_EQ(llama().encode(text), ids_of(c["input_ids"]));
      EXPECT_EQ(llama().decode(ids_of(c["new_ids"]), true), c["new_text"].get<std::string>());
      EXPECT_EQ(llama().decode(ids_of(c["generated_ids"]), true),
                c["full_text"].get<std::string>());
      if (c.contains("beam3")) {
        const json& b = c["beam3"];
        EXPECT_EQ(llama().decode(ids_of(b["new_ids"]), true), b["new_text"].get<std::string>());
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 9);
}

TEST(SentencePieceTokenizer, LlamaSpecialTokens) {
  const GenerativeTokenizer& tok = llama();
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  EXPECT_EQ(tok.unk_id(), 0);
  EXPECT_EQ(tok.pad_id(), 32001);
  EXPECT_EQ(tok.size(), 32002u);
  EXPECT_EQ(tok.token_to_id("<image>"), 32000);
  EXPECT_EQ(tok.token_to_id("▁photo"), 15373);
  EXPECT_EQ(tok.token_to_id("<0x0A>"), 13);
  EXPECT_EQ(tok.token_to_id("no such piece"), -1);
  EXPECT_EQ(tok.id_to_token(32001), "<pad>");
  EXPECT_EQ(tok.id_to_token(13), "<0x0A>");
  for (int32_t id : {0, 1, 2, 32000, 32001}) EXPECT_TRUE(tok.is_special(id)) << id;
  EXPECT_FALSE(tok.is_special(13));
  EXPECT_EQ(tok.special_token("bos_token"), "<s>");
  EXPECT_EQ(tok.special_token("pad_token"), "<pad>");
  EXPECT_EQ(tok.special_token("sep_token"), "");
  // <pad> is no additional special token, so it is decoded inside the text
  // while <image> (past the vocabulary) stands apart with spaces around it.
  EXPECT_EQ(tok.decode({3148, 32001, 1001, 32000, 1001}, false), "US<pad>ER <image> ER");
  EXPECT_THROW(tok.decode({32002}, false), Error);
  EXPECT_THROW(tok.decode({-1}, true), Error);
  EXPECT_THROW(tok.id_to_token(1 << 30), Error);
}

TEST(SentencePieceTokenizer, LlamaBosEosFlags) {
  TempDir dir("mmfuse_spm_flags");
  dir.copy_from(fixture(kLlavaDir.string()));
  json config = read_json(dir.path / "tokenizer_config.json");
  config["add_bos_token"] = false;
  config["add_eos_token"] = true;
  dir.write("tokenizer_config.json", config.dump());
  const auto tok = load_generative_tokenizer(dir.path);
  EXPECT_EQ(tok->encode("a photo of a cat"), (std::vector<int32_t>{263, 15373, 310, 263, 6635, 2}));
  EXPECT_EQ(tok->encode("a photo of a cat", false),
            (std::vector<int32_t>{263, 15373, 310, 263, 6635}));
  config["add_bos_token"] = "yes";
  dir.write("tokenizer_config.json", config.dump());
  try {
    (void)load_generative_tokenizer(dir.path);
    FAIL() << "a non-boolean add_bos_token must be rejected";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    EXPECT_NE(std::string(e.what()).find("add_bos_token"), std::string::npos) << e.what();
  }
}

TEST(SentencePieceTokenizer, T5SentinelsAndSpecials) {
  const GenerativeTokenizer& tok = t5();
  EXPECT_EQ(tok.size(), 32100u);
  EXPECT_EQ(tok.bos_id(), -1);
  EXPECT_EQ(tok.eos_id(), 1);
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.unk_id(), 2);
  EXPECT_EQ(tok.token_to_id("<extra_id_0>"), 32099);
  EXPECT_EQ(tok.token_to_id("<extra_id_99>"), 32000);
  EXPECT_TRUE(tok.is_special(32050));
  // The sentinels strip the spaces on both sides (lstrip/rstrip) and decode
  // apart, joined with spaces.
  const std::vector<int32_t> ids = tok.encode("a <extra_id_0>  b");
  ASSERT_EQ(ids.size(), 6u);
  EXPECT_EQ(ids[2], 32099);
  EXPECT_EQ(ids.back(), 1);
  EXPECT_EQ(tok.tokenize("a <extra_id_0>  b"),
            (std::vector<std::string>{"▁", "a", "<extra_id_0>", "▁", "b"}));
  EXPECT_EQ(tok.decode(ids, false), "a <extra_id_0> b</s>");
  EXPECT_EQ(tok.decode(ids, true), "a b");
  // T5 adds </s> only when the ids do not already end with it.
  EXPECT_EQ(tok.encode("cat</s>"), tok.encode("cat</s>", false));
}

TEST(SentencePieceTokenizer, FolderErrors) {
  TempDir dir("mmfuse_spm_errors");
  try {
    (void)load_generative_tokenizer(dir.path);
    FAIL() << "an empty folder has no tokenizer";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::not_found);
    EXPECT_NE(std::string(e.what()).find("tokenizer.model"), std::string::npos) << e.what();
  }
  try {
    (void)SentencePieceTokenizer::load(dir.path, SentencePieceFlavour::t5);
    FAIL() << "spiece.model is missing";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::not_found);
    EXPECT_NE(std::string(e.what()).find("spiece.model"), std::string::npos) << e.what();
  }
  for (const std::string& garbage :
       {std::string(), std::string("not a model at all"), std::string("\x0a\x05\x0a\x01\x61", 5),
        std::string(1000, '\xff')}) {
    dir.write("tokenizer.model", garbage);
    try {
      (void)load_generative_tokenizer(dir.path);
      FAIL() << "a corrupt tokenizer.model must be rejected";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::bad_input);
      EXPECT_NE(std::string(e.what()).find("tokenizer.model"), std::string::npos) << e.what();
    }
  }
  // A truncated real model.
  std::ifstream in(fixture(kLlavaDir.string()) / "tokenizer.model", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  dir.write("tokenizer.model", bytes.substr(0, bytes.size() / 2));
  EXPECT_THROW((void)load_generative_tokenizer(dir.path), Error);
  // A malformed tokenizer_config.json next to a good model.
  dir.write("tokenizer.model", bytes);
  dir.write("tokenizer_config.json", "{\"legacy\": ");
  try {
    (void)load_generative_tokenizer(dir.path);
    FAIL() << "malformed JSON must be rejected";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    EXPECT_NE(std::string(e.what()).find("tokenizer_config.json"), std::string::npos) << e.what();
  }
}

TEST(SentencePieceTokenizer, InvalidUtf8AndOddInputDoNotThrow) {
  for (const GenerativeTokenizer* tok : {&llama(), &t5()}) {
    for (const std::string& text :
         {std::string("\xff\xfe bad \xc3"), std::string("a\0b", 3), std::string("▁▁<s>▁"),
          std::string("<image><image>"), std::string(5000, ' ')}) {
      const std::vector<int32_t> ids = tok->encode(text);
      EXPECT_NO_THROW((void)tok->decode(ids, false));
      EXPECT_NO_THROW((void)tok->decode(ids, true));
    }
  }
}

TEST(SentencePieceTokenizer, ConcurrentUseGivesTheSameIds) {
  const json cases = read_json(fixture("llava/tokenizer_expected_llama.json"))["cases"];
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round)
        for (const json& c : cases) {
          const std::vector<int32_t> ids = llama().encode(c["text"].get<std::string>());
          failures[t] += ids != ids_of(c["ids"]) ||
                         llama().decode(ids, false) != c["decoded"].get<std::string>();
        }
    });
  for (auto& th : threads) th.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

}  // namespace
}  // namespace mmfuse
