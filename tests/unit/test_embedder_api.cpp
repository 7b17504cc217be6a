// The public API (include/mmfuse/embedder.h) gives the same numbers as the model.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "mmfuse/embedder.h"
#include "models/clip.h"
#include "test_util.h"

namespace mmfuse {
namespace {

namespace fs = std::filesystem;

TEST(EmbedderApi, MatchesReferenceEmbeddingsAndClassifies) {
  const std::string dir = test::fixture("clip/models/clip-tiny-gelu-p16").string();
  auto model = Embedder::open(dir);
  EXPECT_EQ(model->dim(), 32);
  EXPECT_EQ(model->name(), "clip-tiny-gelu-p16");
  auto text = model->embed_texts({"a photo of a cat", "a photo of a dog"});
  test::Reference ref(test::fixture("clip/outputs/clip-tiny-gelu-p16/outputs.safetensors"));
  std::vector<float> expected = ref.f32("text_embeds");
  ASSERT_EQ(text.size(), 2u);
  EXPECT_LE(test::max_abs_diff(text[0].data(), expected.data(), 32), 5e-5);
  EXPECT_LE(test::max_abs_diff(text[1].data(), expected.data() + 32, 32), 5e-5);

  const std::string img = test::fixture("images/img2_square_224x224_rgb.png").string();
  auto image = model->embed_image_files({img});
  std::vector<float> image_ref = ref.f32("image_embeds");
  EXPECT_GE(test::cosine(image[0].data(), image_ref.data() + 2 * 32, 32), 0.9999);

  auto scores = model->classify(img, {"cat", "dog", "tile"});
  ASSERT_EQ(scores.size(), 3u);
  EXPECT_GE(scores[0].score, scores[1].score);
  EXPECT_NEAR(scores[0].score + scores[1].score + scores[2].score, 1.0, 1e-5);
}

// A real Hugging Face model_type that mmfuse does not load: the folder is well formed, so the
// error is `unsupported` (exit 2 / HTTP 422) and names the config file and the model_type.
TEST(EmbedderApi, RejectsUnsupportedModelTypes) {
  const fs::path root =
      fs::temp_directory_path() / ("mmfuse_unsupported_" + std::to_string(::getpid()));
  fs::remove_all(root);
  for (const std::string type : {"gpt2", "t5"}) {
    const fs::path dir = root / type;
    fs::create_directories(dir);
    std::ofstream(dir / "config.json")
        << R"({"architectures": ["X"], "model_type": ")" << type << R"(", "vocab_size": 100})";
    try {
      Embedder::open(dir.string());
      ADD_FAILURE() << type << ": expected an error";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_EQ(e.kind(), ErrorKind::unsupported) << to_string(e.kind()) << ": " << msg;
      EXPECT_NE(msg.find((dir / "config.json").string()), std::string::npos) << msg;
      EXPECT_NE(msg.find("\"" + type + "\""), std::string::npos) << msg;
    }
  }
  fs::remove_all(root);
}

TEST(EmbedderApi, MissingFolderIsNotFound) {
  const std::string dir = test::fixture("bert_does_not_exist").string();
  try {
    Embedder::open(dir);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::not_found) << e.what();
    EXPECT_NE(std::string(e.what()).find(dir), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mmfuse
