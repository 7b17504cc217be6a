// The public generation API (include/mmfuse/generator.h) gives the tokens
// transformers 4.44 generated for the LLaVA reference cases, through the raw
// prompt and through the chat template, streamed or not, from many threads.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "mmfuse/generator.h"
#include "test_util.h"

namespace mmfuse {
namespace {

using test::fixture;

nlohmann::json reference_case(const std::string& outputs, int index) {
  std::ifstream in(fixture("llava/outputs/" + outputs + "/outputs.json"));
  return nlohmann::json::parse(in)["cases"][index];
}

std::string photo(const nlohmann::json& c) {
  return fixture(c["image_index"] == 0 ? "photos/bus.jpg" : "photos/coco_000000052891.jpg");
}

TEST(GeneratorApi, PromptAndChatGiveTheReferenceTokens) {
  auto llava = Generator::open(fixture("llava/models/llava-1.5-tiny"), test::pool_ptr());
  EXPECT_TRUE(llava->takes_images());
  GenerationSettings settings;
  settings.max_new_tokens = 16;
  for (int i = 0; i < 3; ++i) {
    const nlohmann::json c = reference_case("llava-1.5-tiny", i);
    const Generated raw = llava->generate(c["text"], {photo(c)}, settings);
    EXPECT_EQ(raw.tokens, c["new_ids"].get<std::vector<int32_t>>()) << "case " << i;
    EXPECT_EQ(raw.text, c["new_text"].get<std::string>());
    EXPECT_EQ(raw.prompt_tokens, c["lm_sequence_length"].get<size_t>());
    EXPECT_EQ(raw.finish_reason, "length");

    std::string streamed;
    const Generated chat = llava->chat({{"user", c["user_prompt"], {photo(c)}}}, settings,
                                       [&](const std::string& piece) {
                                         streamed += piece;
                                         return true;
                                       });
    EXPECT_EQ(chat.tokens, raw.tokens) << "case " << i;
    EXPECT_EQ(streamed, raw.text);
  }
}

TEST(GeneratorApi, MergedAdapterAndBeamSearch) {
  const nlohmann::json c = reference_case("llava-1.5-tiny-lora", 0);
  auto llava = Generator::open(fixture("llava/models/llava-1.5-tiny"), test::pool_ptr(),
                               fixture("llava/models/llava-1.5-tiny-lora"));
  GenerationSettings settings;
  settings.max_new_tokens = 16;
  EXPECT_EQ(llava->generate(c["text"], {photo(c)}, settings).tokens,
            c["new_ids"].get<std::vector<int32_t>>());
  settings.num_beams = 3;
  EXPECT_EQ(llava->generate(c["text"], {photo(c)}, settings).tokens,
            c["beam3"]["new_ids"].get<std::vector<int32_t>>());
  // Beam search cannot stream.
  EXPECT_THROW(llava->generate(c["text"], {photo(c)}, settings,
                               [](const std::string&) { return true; }),
               Error);
}

TEST(GeneratorApi, ThreadsGetTheirOwnResults) {
  auto llava = Generator::open(fixture("llava/models/llava-1.5-tiny"), test::pool_ptr());
  GenerationSettings settings;
  settings.max_new_tokens = 8;
  std::vector<nlohmann::json> cases;
  for (int i = 0; i < 3; ++i) cases.push_back(reference_case("llava-1.5-tiny", i));
  std::vector<std::vector<int32_t>> results(6);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < results.size(); ++t)
    threads.emplace_back([&, t] {
      const auto& c = cases[t % 3];
      results[t] = llava->generate(c["text"], {photo(c)}, settings).tokens;
    });
  for (auto& t : threads) t.join();
  for (size_t t = 0; t < results.size(); ++t) {
    const auto want = cases[t % 3]["new_ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(results[t], std::vector<int32_t>(want.begin(), want.begin() + 8)) << "thread " << t;
  }
}

TEST(GeneratorApi, BadInputIsAnErrorNamingIt) {
  try {
    Generator::open(fixture("clip/models/clip-tiny-gelu-p16"));
    FAIL() << "a CLIP folder opened as a generator";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unsupported);
    EXPECT_NE(std::string(e.what()).find("generate"), std::string::npos) << e.what();
  }
  auto llava = Generator::open(fixture("llava/models/llava-1.5-tiny"), test::pool_ptr());
  try {
    llava->generate("USER: <image>\nhi ASSISTANT:", {fixture("photos/missing.jpg")});
    FAIL() << "a missing image was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.jpg"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mmfuse
