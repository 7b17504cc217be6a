// The image side of BLIP-2 against transformers 4.44 (tests/fixtures/blip2,
// tiny random folders with F16 weights computed in float32): BlipImageProcessor
// pixel values (exact), the vision tower's last_hidden_state and pooler_output,
// the Q-Former output and language_projection (1e-4 relative to scale), and
// the config reader.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "io/model_folder.h"
#include "mmfuse/error.h"
#include "models/blip2_config.h"
#include "models/blip2_image_encoder.h"
#include "test_util.h"
#include "vision/image.h"
#include "vision/image_processor.h"

namespace mmfuse {
namespace {

using test::fixture;

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// 1e-4 relative to the reference's scale (at least 1).
double bar(const std::vector<float>& ref) {
  double m = 1.0;
  for (float v : ref) m = std::max(m, static_cast<double>(std::fabs(v)));
  return 1e-4 * m;
}

std::filesystem::path photo_of(const nlohmann::json& c) {
  return fixture("photos/" +
                 std::filesystem::path(c["image"].get<std::string>()).filename().string());
}

class Blip2VisionParity : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    dir_ = fixture(std::string("blip2/models/") + GetParam());
    const std::filesystem::path config_path = dir_ / "config.json";
    config_ = Blip2Config::from_json(read_json_file(config_path), config_path.string());
    encoder_ = std::make_unique<Blip2ImageEncoder>(WeightStore::open_folder(dir_), config_,
                                                   test::pool_ptr(), dir_);
    outputs_ = read_json(fixture(std::string("blip2/outputs/") + GetParam() + "/outputs.json"));
    ref_ = std::make_unique<test::Reference>(
        fixture(std::string("blip2/outputs/") + GetParam() + "/outputs.safetensors"));
    pixels_ =
        std::make_unique<test::Reference>(fixture("blip2/preprocess/pixel_values.safetensors"));
  }

  std::filesystem::path dir_;
  Blip2Config config_;
  std::unique_ptr<Blip2ImageEncoder> encoder_;
  nlohmann::json outputs_;
  std::unique_ptr<test::Reference> ref_, pixels_;
};

TEST_P(Blip2VisionParity, PixelValuesAreExact) {
  ASSERT_EQ(outputs_["cases"].size(), 3u);
  for (const auto& c : outputs_["cases"]) {
    const int image = c["image_index"].get<int>();
    const std::vector<float> ours = encoder_->pixel_values(decode_image_file(photo_of(c)));
    const std::vector<float> want = pixels_->f32("pixel_values_" + std::to_string(image));
    ASSERT_EQ(ours.size(), want.size());
    EXPECT_EQ(test::max_abs_diff(ours, want), 0.0) << "case " << c["case"];
  }
}

TEST_P(Blip2VisionParity, VisionQFormerAndProjection) {
  double worst[4] = {0, 0, 0, 0};  // relative to each bar's scale
  const char* names[4] = {"vision_last_hidden_state", "vision_pooler_output",
                          "qformer_last_hidden_state", "language_projection"};
  for (const auto& c : outputs_["cases"]) {
    const std::string p = "case" + std::to_string(c["case"].get<int>()) + "_";
    SCOPED_TRACE(p);
    const std::vector<float> pixels =
        pixels_->f32("pixel_values_" + std::to_string(c["image_index"].get<int>()));
    const Blip2VisionOutput vision = encoder_->vision(pixels.data(), 1);
    const std::vector<float> queries = encoder_->qformer(vision.last_hidden_state.data(), 1);
    const std::vector<float> projected = encoder_->project(queries.data(), 1);
    const std::vector<float>* ours[4] = {&vision.last_hidden_state, &vision.pooler_output, &queries,
                                         &projected};
    for (int i = 0; i < 4; ++i) {
      const std::vector<float> want = ref_->f32(p + names[i]);
      ASSERT_EQ(ours[i]->size(), want.size()) << names[i];
      const double diff = test::max_abs_diff(*ours[i], want);
      EXPECT_LE(diff, bar(want)) << names[i];
      worst[i] = std::max(worst[i], diff / (bar(want) * 1e4));
    }
    // The one call the language model's caller makes gives the same rows.
    const std::vector<float> direct = encoder_->language_inputs(pixels.data(), 1);
    EXPECT_EQ(direct, projected);
  }
  for (int i = 0; i < 4; ++i)
    std::cout << "[ BLIP-2 ] " << GetParam() << " " << names[i]
              << " max abs diff / scale = " << worst[i] << "\n";
}

TEST_P(Blip2VisionParity, LanguageInputsOfAnImageAreOneSegment) {
  const auto& c = outputs_["cases"][1];
  const Image image = decode_image_file(photo_of(c));
  const PromptSegment segment = encoder_->language_inputs(image);
  EXPECT_EQ(segment.rows, encoder_->query_rows());
  EXPECT_EQ(segment.rows, 8u);
  EXPECT_TRUE(segment.ids.empty());
  const std::vector<float> want = ref_->f32("case1_language_projection");
  ASSERT_EQ(segment.embeddings.size(), want.size());
  EXPECT_LE(test::max_abs_diff(segment.embeddings, want), bar(want));
  EXPECT_EQ(segment.embeddings.size(),
            segment.rows * static_cast<size_t>(encoder_->text_hidden_size()));
}

TEST_P(Blip2VisionParity, FloatWeightsGiveTheSameRows) {
  // Tensors already widened to float32 (as from an F32 file) take the packed
  // float32 path instead of the stored-type one: the fused qkv split into
  // packed thirds, the Q-Former and projection products.
  std::shared_ptr<WeightStore> store = WeightStore::open_folder(dir_);
  const int64_t h = config_.vision.hidden_size, qh = config_.qformer.hidden_size;
  for (int i = 0; i < config_.vision.num_hidden_layers; ++i) {
    const std::string p = "vision_model.encoder.layers." + std::to_string(i);
    store->f32(p + ".self_attn.qkv.weight", {3 * h, h});
    store->f32(p + ".mlp.fc1.weight", {config_.vision.intermediate_size, h});
  }
  store->f32("qformer.encoder.layer.0.crossattention.attention.key.weight", {qh, h});
  store->f32("language_projection.weight", {config_.text_hidden_size, qh});
  const Blip2ImageEncoder widened(store, config_, test::pool_ptr());
  for (int image = 0; image < 2; ++image) {
    const std::vector<float> pixels = pixels_->f32("pixel_values_" + std::to_string(image));
    const std::vector<float> want =
        ref_->f32("case" + std::to_string(image) + "_language_projection");
    const std::vector<float> ours = widened.language_inputs(pixels.data(), 1);
    ASSERT_EQ(ours.size(), want.size());
    EXPECT_LE(test::max_abs_diff(ours, want), bar(want)) << "image " << image;
  }
  // Without the folder there is no preprocessor: a clear not_found.
  try {
    widened.pixel_values(decode_image_file(fixture("photos/bus.jpg")));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::not_found) << e.what();
  }
}

TEST_P(Blip2VisionParity, MissingTensorIsNamed) {
  // A config with more vision layers than the file has names the absent tensor.
  Blip2Config bigger = config_;
  bigger.vision.num_hidden_layers = 3;
  try {
    Blip2ImageEncoder(WeightStore::open_folder(dir_), bigger, test::pool_ptr());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input) << e.what();
    EXPECT_NE(std::string(e.what()).find("vision_model.encoder.layers.2."), std::string::npos)
        << e.what();
  }
}

TEST_P(Blip2VisionParity, ManyThreadsGetTheSameRows) {
  const std::vector<float> pixels = pixels_->f32("pixel_values_0");
  const std::vector<float> alone = encoder_->language_inputs(pixels.data(), 1);
  std::vector<std::vector<float>> got(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t)
    threads.emplace_back([&, t] { got[t] = encoder_->language_inputs(pixels.data(), 1); });
  for (auto& t : threads) t.join();
  for (const auto& g : got) EXPECT_EQ(g, alone);
}

TEST_P(Blip2VisionParity, BatchOfTwoMatchesOneByOne) {
  std::vector<float> both = pixels_->f32("pixel_values_0");
  const std::vector<float> second = pixels_->f32("pixel_values_1");
  both.insert(both.end(), second.begin(), second.end());
  const std::vector<float> batched = encoder_->language_inputs(both.data(), 2);
  const std::vector<float> want0 = ref_->f32("case0_language_projection");
  const std::vector<float> want1 = ref_->f32("case1_language_projection");
  ASSERT_EQ(batched.size(), want0.size() + want1.size());
  EXPECT_LE(test::max_abs_diff(batched.data(), want0.data(), want0.size()), bar(want0));
  EXPECT_LE(test::max_abs_diff(batched.data() + want0.size(), want1.data(), want1.size()),
            bar(want1));
}

INSTANTIATE_TEST_SUITE_P(Folders, Blip2VisionParity,
                         ::testing::Values("blip2-opt-tiny", "blip2-flan-t5-tiny"),
                         [](const auto& param_info) {
                           std::string name = param_info.param;
                           for (char& ch : name)
                             if (ch == '-') ch = '_';
                           return name;
                         });

TEST(Blip2Config, ReadsTheVerboseFixtureConfigs) {
  const auto opt_path = fixture("blip2/models/blip2-opt-tiny/config.json");
  const Blip2Config opt = Blip2Config::from_json(read_json_file(opt_path), opt_path.string());
  EXPECT_EQ(opt.vision.hidden_size, 32);
  EXPECT_EQ(opt.vision.intermediate_size, 64);
  EXPECT_EQ(opt.vision.num_hidden_layers, 2);
  EXPECT_EQ(opt.vision.num_attention_heads, 4);
  EXPECT_EQ(opt.vision.patch_size, 14);
  EXPECT_EQ(opt.vision.num_positions(), 257);
  EXPECT_FLOAT_EQ(opt.vision.layer_norm_eps, 1e-6f);
  EXPECT_TRUE(opt.vision.qkv_bias);
  EXPECT_EQ(opt.qformer.hidden_size, 32);
  EXPECT_EQ(opt.qformer.cross_attention_frequency, 2);
  EXPECT_TRUE(opt.qformer.has_cross_attention(0));
  EXPECT_FALSE(opt.qformer.has_cross_attention(1));
  EXPECT_FLOAT_EQ(opt.qformer.layer_norm_eps, 1e-12f);
  EXPECT_EQ(opt.qformer.encoder_hidden_size, 32);
  EXPECT_EQ(opt.num_query_tokens, 8);
  EXPECT_EQ(opt.text_model_type, "opt");
  EXPECT_EQ(opt.text_hidden_size, 8);
  EXPECT_EQ(opt.text_config.value("eos_token_id", 0), 50118);
  EXPECT_FALSE(opt.image_token_index.has_value());

  const auto t5_path = fixture("blip2/models/blip2-flan-t5-tiny/config.json");
  const Blip2Config t5 = Blip2Config::from_json(read_json_file(t5_path), t5_path.string());
  EXPECT_EQ(t5.text_model_type, "t5");
  EXPECT_EQ(t5.text_hidden_size, 8);
  EXPECT_EQ(t5.qformer.cross_attention_frequency, 1);
  EXPECT_TRUE(t5.qformer.has_cross_attention(1));
}

TEST(Blip2Config, AbsentKeysTakeTheClassDefaults) {
  const Blip2Config c = Blip2Config::from_json(nlohmann::json::object(), "config.json");
  EXPECT_EQ(c.vision.hidden_size, 1408);
  EXPECT_EQ(c.vision.intermediate_size, 6144);
  EXPECT_EQ(c.vision.num_hidden_layers, 39);
  EXPECT_EQ(c.vision.num_attention_heads, 16);
  EXPECT_EQ(c.vision.image_size, 224);
  EXPECT_EQ(c.vision.patch_size, 14);
  EXPECT_FLOAT_EQ(c.vision.layer_norm_eps, 1e-6f);
  EXPECT_EQ(c.vision.hidden_act, Activation::gelu);
  EXPECT_TRUE(c.vision.qkv_bias);
  EXPECT_EQ(c.qformer.hidden_size, 768);
  EXPECT_EQ(c.qformer.num_hidden_layers, 12);
  EXPECT_EQ(c.qformer.num_attention_heads, 12);
  EXPECT_EQ(c.qformer.intermediate_size, 3072);
  EXPECT_FLOAT_EQ(c.qformer.layer_norm_eps, 1e-12f);
  EXPECT_EQ(c.qformer.cross_attention_frequency, 2);
  EXPECT_EQ(c.qformer.encoder_hidden_size, 1408);
  EXPECT_EQ(c.num_query_tokens, 32);
  EXPECT_EQ(c.text_model_type, "opt");
  EXPECT_EQ(c.text_hidden_size, 768);
  // encoder_hidden_size always follows the vision tower, as Blip2Config sets it.
  const nlohmann::json j = {{"vision_config", {{"hidden_size", 64}, {"num_attention_heads", 4}}},
                            {"qformer_config", {{"encoder_hidden_size", 1408}}},
                            {"text_config", {{"model_type", "t5"}, {"d_model", 16}}},
                            {"image_token_index", 50265}};
  const Blip2Config d = Blip2Config::from_json(j, "config.json");
  EXPECT_EQ(d.qformer.encoder_hidden_size, 64);
  EXPECT_EQ(d.text_hidden_size, 16);
  EXPECT_EQ(d.image_token_index.value_or(0), 50265);
}

void expect_error(const nlohmann::json& j, ErrorKind kind, const std::string& needle) {
  try {
    Blip2Config::from_json(j, "some/config.json");
    ADD_FAILURE() << "no error for " << j.dump();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("some/config.json"), std::string::npos) << e.what();
  }
}

TEST(Blip2Config, BadOrUnsupportedFieldsAreNamed) {
  expect_error({{"vision_config", {{"hidden_act", "swiglu_x"}}}}, ErrorKind::unsupported,
               "vision_config hidden_act");
  expect_error({{"qformer_config", {{"hidden_act", "nope"}}}}, ErrorKind::unsupported,
               "qformer_config hidden_act");
  expect_error({{"text_config", {{"model_type", "llama"}}}}, ErrorKind::unsupported, "llama");
  expect_error({{"qformer_config", {{"position_embedding_type", "relative_key"}}}},
               ErrorKind::unsupported, "position_embedding_type");
  expect_error({{"qformer_config", {{"cross_attention_frequency", 0}}}}, ErrorKind::bad_input,
               "cross_attention_frequency");
  expect_error({{"vision_config", {{"hidden_size", 30}, {"num_attention_heads", 4}}}},
               ErrorKind::bad_input, "num_attention_heads");
  expect_error({{"vision_config", {{"image_size", 225}}}}, ErrorKind::bad_input, "patch_size");
  expect_error({{"num_query_tokens", "many"}}, ErrorKind::bad_input, "num_query_tokens");
  expect_error({{"vision_config", 3}}, ErrorKind::bad_input, "vision_config");
}

TEST(BlipImageProcessor, ResizesToExactSizeWithoutCrop) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("mmfuse_blip_processor_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto write = [&](const nlohmann::json& j) {
    std::ofstream(dir / "preprocessor_config.json") << j.dump();
    return dir / "preprocessor_config.json";
  };
  // Crop keys are ignored (BlipImageProcessor has no crop); an int size is a square.
  ImageProcessorConfig c =
      ImageProcessorConfig::from_file(write({{"image_processor_type", "BlipImageProcessor"},
                                             {"size", 224},
                                             {"do_center_crop", true},
                                             {"crop_size", 100}}));
  EXPECT_FALSE(c.do_center_crop);
  EXPECT_EQ(c.out_height(), 224);
  EXPECT_EQ(c.out_width(), 224);
  // The class default size is 384 x 384.
  c = ImageProcessorConfig::from_file(write({{"image_processor_type", "BlipImageProcessor"}}));
  EXPECT_EQ(c.out_height(), 384);
  EXPECT_EQ(c.out_width(), 384);
  EXPECT_THROW(
      ImageProcessorConfig::from_file(write(
          {{"image_processor_type", "BlipImageProcessor"}, {"size", {{"shortest_edge", 224}}}})),
      Error);
  // Without the type, the CLIP defaults stand (centre crop on).
  c = ImageProcessorConfig::from_file(write({{"size", {{"height", 224}, {"width", 224}}}}));
  EXPECT_TRUE(c.do_center_crop);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mmfuse
