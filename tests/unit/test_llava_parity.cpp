// LLaVA-1.5 against transformers 4.44 (tests/fixtures/llava, made on tiny
// random folders): pixel values, projector output, first-step and
// per-position logits, greedy and beam generation, and a PEFT LoRA adapter
// merged and unmerged. Bars from the fixture README.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "generate/generator.h"
#include "mmfuse/error.h"
#include "models/llava.h"
#include "models/lora.h"
#include "models/registry.h"
#include "test_util.h"
#include "vision/image.h"

namespace mmfuse {
namespace {

using test::fixture;

nlohmann::json read_json(const std::filesystem::path& path) {
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

struct LlavaCase {
  const char* folder;
  const char* outputs;
  const char* adapter;  // "" = none
};

class LlavaParity : public ::testing::TestWithParam<LlavaCase> {
 protected:
  void SetUp() override {
    const LlavaCase& c = GetParam();
    dir_ = fixture(std::string("llava/models/") + c.folder);
    model_ = LlavaModel::load(dir_, test::pool_ptr());
    if (*c.adapter != '\0')
      adapter_ = model_->load_adapter(fixture(std::string("llava/models/") + c.adapter));
    outputs_ = read_json(fixture(std::string("llava/outputs/") + c.outputs + "/outputs.json"));
    ref_ = std::make_unique<test::Reference>(
        fixture(std::string("llava/outputs/") + c.outputs + "/outputs.safetensors"));
    pixels_ = std::make_unique<test::Reference>(fixture("llava/preprocess/pixel_values.safetensors"));
  }

  std::vector<float> pixels_of(int image_index) const {
    const char* files[] = {"photos/bus.jpg", "photos/coco_000000052891.jpg"};
    return model_->preprocess(decode_image_file(fixture(files[image_index])));
  }

  std::filesystem::path dir_;
  std::unique_ptr<LlavaModel> model_;
  std::shared_ptr<const LoraAdapter> adapter_;
  nlohmann::json outputs_;
  std::unique_ptr<test::Reference> ref_, pixels_;
};

TEST_P(LlavaParity, PixelValuesAreExact) {
  for (int i = 0; i < 2; ++i) {
    const std::vector<float> ours = pixels_of(i);
    const std::vector<float> want = pixels_->f32("pixel_values_" + std::to_string(i));
    ASSERT_EQ(ours.size(), want.size());
    EXPECT_LE(test::max_abs_diff(ours, want), 1e-6) << "image " << i;
  }
}

TEST_P(LlavaParity, ProjectorOutput) {
  for (int i = 0; i < 2; ++i) {
    const std::vector<float> pixels = pixels_of(i);
    const std::vector<float> ours = model_->image_features(pixels.data(), 1, adapter_.get());
    const std::vector<float> want = ref_->f32("image" + std::to_string(i) + "_projector_output");
    ASSERT_EQ(ours.size(), want.size());
    EXPECT_LE(test::max_abs_diff(ours, want), bar(want)) << "image " << i;
  }
}

TEST_P(LlavaParity, PromptIdsAndLogits) {
  for (const auto& c : outputs_["cases"]) {
    const int index = c["case"].get<int>();
    SCOPED_TRACE("case " + std::to_string(index));
    const std::vector<int32_t> want_ids = ids32(c["input_ids"]);
    EXPECT_EQ(model_->tokenizer().encode(c["text"].get<std::string>(), true), want_ids);

    const std::vector<float> pixels = pixels_of(c["image_index"].get<int>());
    const PromptInput prompt = model_->prepare_ids(want_ids, pixels.data(), 1, adapter_.get());
    ASSERT_EQ(prompt.length(), c["lm_sequence_length"].get<size_t>());

    std::vector<float> logits(static_cast<size_t>(model_->language_model().vocab_size()));
    model_->language_model().prefill(prompt, logits.data(), adapter_.get());
    const std::string p = "case" + std::to_string(index) + "_";
    const std::vector<float> want = ref_->f32(p + "logits_last");
    EXPECT_LE(test::max_abs_diff(logits, want), bar(want));

    // Every position of the prompt pass: argmax exact, max and logsumexp within the bar.
    const std::vector<float> all = model_->llama().prompt_logits(prompt, adapter_.get());
    const size_t vocab = logits.size(), length = prompt.length();
    const std::vector<int64_t> want_argmax = ref_->i64(p + "logits_argmax_per_position");
    const std::vector<float> want_max = ref_->f32(p + "logits_max_per_position");
    const std::vector<float> want_lse = ref_->f32(p + "logits_logsumexp_per_position");
    ASSERT_EQ(want_argmax.size(), length);
    std::vector<float> ours_max(length), ours_lse(length);
    size_t argmax_mismatches = 0;
    for (size_t t = 0; t < length; ++t) {
      const float* row = &all[t * vocab];
      const size_t best = static_cast<size_t>(std::max_element(row, row + vocab) - row);
      argmax_mismatches += best != static_cast<size_t>(want_argmax[t]);
      ours_max[t] = row[best];
      double sum = 0;
      for (size_t v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(row[v] - row[best]));
      ours_lse[t] = row[best] + static_cast<float>(std::log(sum));
    }
    EXPECT_EQ(argmax_mismatches, 0u);
    EXPECT_LE(test::max_abs_diff(ours_max, want_max), bar(want_max));
    EXPECT_LE(test::max_abs_diff(ours_lse, want_lse), bar(want_lse));
  }
}

TEST_P(LlavaParity, GreedyAndBeamGeneration) {
  for (const auto& c : outputs_["cases"]) {
    const int index = c["case"].get<int>();
    SCOPED_TRACE("case " + std::to_string(index));
    const std::vector<float> pixels = pixels_of(c["image_index"].get<int>());
    GenerationRequest request;
    request.model = &model_->language_model();
    request.prompt = model_->prepare_ids(ids32(c["input_ids"]), pixels.data(), 1, adapter_.get());
    request.adapter = adapter_.get();
    request.tokenizer = &model_->tokenizer();
    request.config = model_->generation_defaults();
    request.config.max_new_tokens = 16;
    const GenerationResult greedy = generate(request);
    ASSERT_EQ(greedy.sequences.size(), 1u);
    EXPECT_EQ(greedy.sequences[0].tokens, ids32(c["new_ids"]));
    EXPECT_EQ(model_->tokenizer().decode(greedy.sequences[0].tokens, true),
              c["new_text"].get<std::string>());

    if (c.contains("beam3") && c["beam3"].is_object()) {
      request.config.num_beams = 3;
      const GenerationResult beam = generate(request);
      const std::vector<int32_t> full = ids32(c["beam3"]["generated_ids"]);
      const std::vector<int32_t> want(full.begin() + static_cast<long>(c["input_ids"].size()),
                                      full.end());
      ASSERT_FALSE(beam.sequences.empty());
      EXPECT_EQ(beam.sequences[0].tokens, want);
      if (c["beam3"].contains("sequences_score")) {
        EXPECT_NEAR(beam.sequences[0].score, c["beam3"]["sequences_score"].get<double>(), 1e-4);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Folders, LlavaParity,
    ::testing::Values(LlavaCase{"llava-1.5-tiny", "llava-1.5-tiny", ""},
                      LlavaCase{"llava-1.5-tiny-gqa", "llava-1.5-tiny-gqa", ""},
                      LlavaCase{"llava-1.5-tiny", "llava-1.5-tiny-lora", "llava-1.5-tiny-lora"}),
    [](const ::testing::TestParamInfo<LlavaCase>& folder) {
      std::string name = folder.param.outputs;
      for (char& ch : name)
        if (ch == '-' || ch == '.') ch = '_';
      return name;
    });

// The adapter merged at load gives the unmerged adapter's outputs.
TEST(LlavaLora, MergedEqualsUnmerged) {
  const auto dir = fixture("llava/models/llava-1.5-tiny");
  const auto adapter_dir = fixture("llava/models/llava-1.5-tiny-lora");
  auto merged = LlavaModel::load(dir, test::pool_ptr(), adapter_dir);
  const nlohmann::json outputs = read_json(fixture("llava/outputs/llava-1.5-tiny-lora/outputs.json"));
  const test::Reference ref(fixture("llava/outputs/llava-1.5-tiny-lora/outputs.safetensors"));
  const auto& c = outputs["cases"][0];
  const std::vector<float> pixels =
      merged->preprocess(decode_image_file(fixture("photos/bus.jpg")));
  const PromptInput prompt = merged->prepare_ids(ids32(c["input_ids"]), pixels.data(), 1);
  std::vector<float> logits(static_cast<size_t>(merged->language_model().vocab_size()));
  merged->language_model().prefill(prompt, logits.data());
  const std::vector<float> want = ref.f32("case0_logits_last");
  EXPECT_LE(test::max_abs_diff(logits, want), bar(want));
}

TEST(LlavaLora, MergedWeightIsTheFormula) {
  auto store = WeightStore::open_folder(fixture("llava/models/llava-1.5-tiny"));
  auto adapter = read_lora_adapter(fixture("llava/models/llava-1.5-tiny-lora"), *store);
  EXPECT_EQ(adapter->modules.size(), 10u);  // 3 vision layers x 2 + 2 Llama layers x 2
  const std::string module = "language_model.model.layers.1.self_attn.v_proj";
  const LoraWeights* lora = adapter->find(module);
  ASSERT_NE(lora, nullptr);
  EXPECT_FLOAT_EQ(lora->scale, 2.0f);
  const float* w = store->f32(module + ".weight", {8, 8});
  const std::vector<float> merged = merged_lora_weight(*lora, w);
  for (int o = 0; o < 8; ++o)
    for (int i = 0; i < 8; ++i) {
      double delta = 0;
      for (int k = 0; k < lora->r; ++k)
        delta += static_cast<double>(lora->b[o * lora->r + k]) * lora->a[k * 8 + i];
      EXPECT_NEAR(merged[o * 8 + i], w[o * 8 + i] + 2.0 * delta, 1e-6);
    }
}

TEST(LlavaLora, AdapterForAnotherBaseNamesTheTensor) {
  // The GQA folder has 3 Llama layers with a 4-wide v_proj: the adapter's
  // v_proj update [8, 8] does not fit it.
  auto model = LlavaModel::load(fixture("llava/models/llava-1.5-tiny-gqa"), test::pool_ptr());
  try {
    model->load_adapter(fixture("llava/models/llava-1.5-tiny-lora"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    EXPECT_NE(std::string(e.what()).find("v_proj.weight"), std::string::npos) << e.what();
  }
}

TEST(LlavaModel, BadInputsAreClearErrors) {
  auto model = open_generative_model(fixture("llava/models/llava-1.5-tiny"), test::pool_ptr());
  // Two <image> tokens, one image.
  const Image bus = decode_image_file(fixture("photos/bus.jpg"));
  EXPECT_THROW(model->prepare("USER: <image><image>\nhi ASSISTANT:", {bus}), Error);
  // Images but no placeholder.
  EXPECT_THROW(model->prepare("USER: hi ASSISTANT:", {bus}), Error);
  // An unknown rope_scaling kind is refused by name.
  nlohmann::json config = read_json(fixture("llava/models/llava-1.5-tiny/config.json"));
  config["text_config"]["rope_scaling"] = {{"rope_type", "longrope"}, {"factor", 2.0}};
  try {
    LlavaConfig::from_json(config, "config.json");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unsupported);
    EXPECT_NE(std::string(e.what()).find("longrope"), std::string::npos);
  }
  // A prompt longer than the context.
  PromptInput long_prompt;
  long_prompt.segments.push_back({std::vector<int32_t>(5000, 100), {}, 0});
  std::vector<float> logits(static_cast<size_t>(model->language_model().vocab_size()));
  EXPECT_THROW(model->language_model().prefill(long_prompt, logits.data()), Error);
}

}  // namespace
}  // namespace mmfuse
