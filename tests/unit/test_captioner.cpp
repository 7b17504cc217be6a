// Captioner on the tiny LLaVA fixture: with the fixture's questions as the
// caption prompt it gives transformers 4.44's tokens (greedy and beam 3: the
// chat template renders the reference prompt), the default prompt, the same
// caption from many threads at once, and bad options refused.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "generate/captioner.h"
#include "mmfuse/error.h"
#include "models/registry.h"
#include "test_util.h"
#include "vision/image.h"

namespace mmfuse {
namespace {

using test::fixture;

std::string trimmed(const std::string& s) {
  const size_t a = s.find_first_not_of(" \n"), b = s.find_last_not_of(" \n");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

class CaptionerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = open_generative_model(fixture("llava/models/llava-1.5-tiny"),
                                   std::make_shared<ThreadPool>(2));
    std::ifstream in(fixture("llava/outputs/llava-1.5-tiny/outputs.json"));
    outputs_ = nlohmann::json::parse(in);
  }
  static void TearDownTestSuite() { model_.reset(); }
  static Image image(int index) {
    const char* files[] = {"photos/bus.jpg", "photos/coco_000000052891.jpg"};
    return decode_image_file(fixture(files[index]));
  }
  static std::shared_ptr<const GenerativeModel> model_;
  static nlohmann::json outputs_;
};
std::shared_ptr<const GenerativeModel> CaptionerTest::model_;
nlohmann::json CaptionerTest::outputs_;

TEST_F(CaptionerTest, QuestionsAsPromptGiveTransformersTokens) {
  for (const auto& c : outputs_["cases"]) {
    CaptionOptions options;
    options.prompt = c["user_prompt"].get<std::string>();
    options.max_new_tokens = 16;
    const Captioner captioner(model_, options);
    EXPECT_EQ(captioner.prompt(), c["text"].get<std::string>());
    const Caption got = captioner.caption(image(c["image_index"].get<int>()));
    EXPECT_EQ(got.tokens, 16u) << c["case"];
    EXPECT_EQ(got.finish_reason, FinishReason::length);
    EXPECT_EQ(got.text, trimmed(c["new_text"].get<std::string>())) << c["case"];
    if (c.contains("beam3")) {
      options.num_beams = 3;
      const Caption beam = Captioner(model_, options).caption(image(c["image_index"].get<int>()));
      const auto ids = c["beam3"]["new_ids"].get<std::vector<int32_t>>();
      EXPECT_EQ(beam.text, trimmed(model_->tokenizer().decode(ids, true))) << c["case"];
      EXPECT_EQ(beam.tokens, ids.size());
    }
  }
}

TEST_F(CaptionerTest, DefaultPromptAndSettings) {
  EXPECT_EQ(default_caption_text(*model_), "Describe this image in one sentence.");
  const Captioner captioner(model_);
  EXPECT_EQ(captioner.prompt(), "USER: <image>\nDescribe this image in one sentence. ASSISTANT:");
  EXPECT_EQ(captioner.config().max_new_tokens, 30);
  EXPECT_EQ(captioner.config().num_beams, 1);
  EXPECT_FALSE(captioner.config().do_sample);
  CaptionOptions bare;
  bare.prompt = "";
  EXPECT_EQ(Captioner(model_, bare).prompt(),
            "USER: <image>\nASSISTANT:");  // the template's own layout
}

TEST_F(CaptionerTest, SameCaptionFromManyThreads) {
  CaptionOptions options;
  options.max_new_tokens = 8;
  const Captioner captioner(model_, options);
  const Image bus = image(0);
  const Caption first = captioner.caption(bus);
  EXPECT_FALSE(first.text.empty());
  EXPECT_EQ(first.tokens, 8u);
  std::vector<Caption> got(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i)
    threads.emplace_back([&, i] { got[i] = captioner.caption(bus); });
  for (auto& t : threads) t.join();
  for (const auto& c : got) EXPECT_EQ(c.text, first.text);
}

TEST_F(CaptionerTest, BadOptionsAreRefused) {
  CaptionOptions options;
  options.num_beams = 0;
  EXPECT_THROW(Captioner(model_, options), Error);
  options.num_beams = 1;
  options.max_new_tokens = 0;
  try {
    Captioner c(model_, options);
    FAIL() << "max_new_tokens 0 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    EXPECT_NE(std::string(e.what()).find("max_new_tokens"), std::string::npos);
  }
  EXPECT_THROW(Captioner(nullptr), Error);
}

// BLIP-2 (OPT and Flan-T5): captions from the image alone by default (an empty
// prompt, as transformers' captioning call), and a prompt is the user's
// question in the folder's question-answer format; both give 4.44's tokens.
TEST(CaptionerBlip2, NoPromptAndQuestionGiveTransformersTokens) {
  const char* photos[] = {"photos/coco_000000039769.jpg", "photos/bus.jpg"};
  for (const std::string folder : {"blip2-opt-tiny", "blip2-flan-t5-tiny"}) {
    SCOPED_TRACE(folder);
    std::shared_ptr<const GenerativeModel> model = open_generative_model(
        fixture("blip2/models/" + folder), std::make_shared<ThreadPool>(2));
    EXPECT_EQ(default_caption_text(*model), "");
    std::ifstream in(fixture("blip2/outputs/" + folder + "/outputs.json"));
    const nlohmann::json outputs = nlohmann::json::parse(in);
    for (const auto& c : outputs["cases"]) {
      const Image image = decode_image_file(fixture(photos[c["image_index"].get<int>()]));
      CaptionOptions options;
      options.max_new_tokens = 16;
      if (!c["prompt"].is_null()) {
        // Only the English "Question: ... Answer:" case maps back to a question.
        const std::string prompt = c["prompt"].get<std::string>();
        const std::string head = "Question: ", tail = " Answer:";
        if (prompt.rfind(head, 0) != 0) continue;
        options.prompt = prompt.substr(head.size(), prompt.size() - head.size() - tail.size());
      }
      const Captioner captioner(model, options);
      EXPECT_EQ(captioner.prompt(), c["prompt"].is_null() ? "" : c["prompt"].get<std::string>());
      const Caption got = captioner.caption(image);
      EXPECT_EQ(got.text, trimmed(c["generated_text"].get<std::string>())) << c["case"];
      EXPECT_EQ(got.tokens, 16u) << c["case"];
      if (c.contains("beam3")) {
        options.num_beams = 3;
        EXPECT_EQ(Captioner(model, options).caption(image).text,
                  trimmed(c["beam3"]["generated_text"].get<std::string>()))
            << c["case"];
      }
    }
  }
}

}  // namespace
}  // namespace mmfuse
