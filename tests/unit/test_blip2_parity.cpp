// BLIP-2 end to end against transformers 4.44 (tests/fixtures/blip2, tiny
// random folders with the OPT and Flan-T5 language models): the folder opened
// through the registry as users open it, the processor and tokenizer from the
// photo and the prompt text, first-step logits, greedy 16 tokens with and
// without a prompt, beam 3; the question-answer chat format; bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "generate/chat_template.h"
#include "generate/generator.h"
#include "mmfuse/error.h"
#include "models/blip2.h"
#include "models/generative_model.h"
#include "models/registry.h"
#include "test_util.h"
#include "vision/image.h"

namespace mmfuse {
namespace {

using test::fixture;
namespace fs = std::filesystem;

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

float bar(const std::vector<float>& ref) {
  float m = 1.0f;
  for (float v : ref) m = std::max(m, std::fabs(v));
  return 1e-4f * m;
}

std::vector<int32_t> ids32(const nlohmann::json& ids) {
  std::vector<int32_t> out;
  for (const auto& v : ids) out.push_back(v.get<int32_t>());
  return out;
}

Image photo(int image_index) {
  const char* files[] = {"photos/coco_000000039769.jpg", "photos/bus.jpg"};
  return decode_image_file(fixture(files[image_index]));
}

class Blip2Parity : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    const std::string folder = GetParam();
    model_ = open_generative_model(fixture("blip2/models/" + folder), test::pool_ptr());
    outputs_ = read_json(fixture("blip2/outputs/" + folder + "/outputs.json"));
    ref_ = std::make_unique<test::Reference>(
        fixture("blip2/outputs/" + folder + "/outputs.safetensors"));
  }
  static std::string prompt_of(const nlohmann::json& c) {
    return c["prompt"].is_string() ? c["prompt"].get<std::string>() : std::string();
  }
  // generate() returns [bos] + new (OPT) or [decoder start] + new (T5).
  static std::vector<int32_t> new_ids(const nlohmann::json& generated) {
    std::vector<int32_t> all = ids32(generated);
    return std::vector<int32_t>(all.begin() + 1, all.end());
  }
  GenerationRequest request_for(const nlohmann::json& c) const {
    GenerationRequest request;
    request.model = &model_->language_model();
    request.prompt = model_->prepare(prompt_of(c), {photo(c["image_index"].get<int>())});
    request.tokenizer = &model_->tokenizer();
    request.config = model_->generation_defaults();
    request.config.max_new_tokens = 16;
    return request;
  }

  std::unique_ptr<GenerativeModel> model_;
  nlohmann::json outputs_;
  std::unique_ptr<test::Reference> ref_;
};

TEST_P(Blip2Parity, TokenizerAndFirstLogits) {
  EXPECT_EQ(model_->model_type(), "blip-2");
  for (const auto& c : outputs_["cases"]) {
    const int index = c["case"].get<int>();
    SCOPED_TRACE("case " + std::to_string(index));
    if (c.contains("input_ids")) {
      EXPECT_EQ(model_->tokenizer().encode(prompt_of(c), true), ids32(c["input_ids"]));
    }
    const PromptInput prompt = model_->prepare(prompt_of(c), {photo(c["image_index"].get<int>())});
    std::vector<float> logits(static_cast<size_t>(model_->language_model().vocab_size()));
    model_->language_model().prefill(prompt, logits.data());
    const std::vector<float> want = ref_->f32("case" + std::to_string(index) + "_logits_last");
    ASSERT_EQ(logits.size(), want.size());
    EXPECT_LE(test::max_abs_diff(logits, want), bar(want));
  }
}

TEST_P(Blip2Parity, GreedyAndBeamGeneration) {
  for (const auto& c : outputs_["cases"]) {
    const int index = c["case"].get<int>();
    SCOPED_TRACE("case " + std::to_string(index));
    GenerationRequest request = request_for(c);
    const GenerationResult greedy = generate(request);
    ASSERT_EQ(greedy.sequences.size(), 1u);
    EXPECT_EQ(greedy.sequences[0].tokens, new_ids(c["generated_ids"]));
    EXPECT_EQ(model_->tokenizer().decode(greedy.sequences[0].tokens, true),
              c["generated_text"].get<std::string>());
    if (c.contains("beam3") && c["beam3"].is_object()) {
      request.config.num_beams = 3;
      const GenerationResult beam = generate(request);
      ASSERT_FALSE(beam.sequences.empty());
      EXPECT_EQ(beam.sequences[0].tokens, new_ids(c["beam3"]["generated_ids"]));
    }
  }
}

// Without max_new_tokens, 4.44 gives OPT max_length - 1 - len(input_ids) new
// tokens (the query rows are added and taken off again) and T5 max_length - 1.
TEST_P(Blip2Parity, DefaultLengthIsTransformers) {
  const auto& c = outputs_["cases"][1];
  GenerationRequest request = request_for(c);
  request.config.max_new_tokens.reset();
  const GenerationResult result = generate(request);
  const bool opt = std::string(GetParam()).find("opt") != std::string::npos;
  const size_t want = opt ? 20 - 1 - c["input_ids"].size() : 19;
  ASSERT_EQ(result.sequences.size(), 1u);
  if (result.sequences[0].finish_reason == FinishReason::length)
    EXPECT_EQ(result.sequences[0].tokens.size(), want);
  else
    EXPECT_LE(result.sequences[0].tokens.size(), want);
}

TEST_P(Blip2Parity, OneImageExactly) {
  for (size_t n : {0, 2}) {
    std::vector<Image> images(n, photo(0));
    try {
      model_->prepare("Question: what is this? Answer:", images);
      FAIL() << n << " images accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::bad_input);
      EXPECT_NE(std::string(e.what()).find("exactly one image"), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(model_->takes_images());
  EXPECT_EQ(model_->image_placeholder(), "");
}

INSTANTIATE_TEST_SUITE_P(Folders, Blip2Parity,
                         ::testing::Values("blip2-opt-tiny", "blip2-flan-t5-tiny"),
                         [](const ::testing::TestParamInfo<const char*>& folder) {
                           std::string name = folder.param;
                           for (char& ch : name)
                             if (ch == '-') ch = '_';
                           return name;
                         });

std::string render(const GenerativeModel& model, const nlohmann::json& messages) {
  return render_chat(model.chat_template(), messages, true, model.tokenizer());
}

TEST(Blip2Chat, QuestionAnswerFormat) {
  auto model = open_generative_model(fixture("blip2/models/blip2-opt-tiny"), test::pool_ptr());
  const nlohmann::json image = {{"type", "image"}};
  const nlohmann::json question = {{"type", "text"}, {"text", "what color is the bus?"}};
  EXPECT_EQ(render(*model, {{{"role", "user"}, {"content", {image, question}}}}),
            "Question: what color is the bus? Answer:");
  EXPECT_EQ(render(*model, {{{"role", "user"}, {"content", {image}}}}), "");
  EXPECT_EQ(render(*model, nlohmann::json::array(
                               {{{"role", "user"}, {"content", "how many cats?"}},
                                {{"role", "assistant"}, {"content", "two"}},
                                {{"role", "user"}, {"content", "what are they lying on?"}}})),
            "Question: how many cats? Answer: two. Question: what are they lying on? Answer:");
}

TEST(Blip2Folder, MissingTokenizerFileIsNamed) {
  const fs::path dir = fs::temp_directory_path() / ("mmfuse_blip2_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::copy(fixture("blip2/models/blip2-flan-t5-tiny"), dir, fs::copy_options::recursive);
  fs::remove(dir / "spiece.model");
  try {
    open_generative_model(dir, test::pool_ptr());
    FAIL() << "a T5 folder without spiece.model opened";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("spiece.model"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mmfuse
