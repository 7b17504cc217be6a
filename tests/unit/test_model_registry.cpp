// The model registry (models/registry.h): every model folder the project has —
// the fixtures, and ../shared/reference where it is present — goes through it,
// and each opens as the capabilities its entry claims.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "detect/sound_detector.h"
#include "io/model_folder.h"
#include "mmfuse/error.h"
#include "models/bert.h"
#include "models/dual_encoder.h"
#include "models/generative_model.h"
#include "models/registry.h"
#include "models/sound_cnn_lstm.h"
#include "models/timm_resnet.h"
#include "models/wav2vec2.h"
#include "test_util.h"

namespace fs = std::filesystem;

namespace mmfuse {
namespace {

// Folders holding a config.json under `root` (one level of model folders per
// "<family>/models/" and the sound classifier fixtures).
std::vector<fs::path> model_folders(const fs::path& root) {
  std::vector<fs::path> out;
  if (!fs::is_directory(root)) return out;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file() && e.path().filename() == "config.json")
      out.push_back(e.path().parent_path());
  std::sort(out.begin(), out.end());
  return out;
}

// Opens `dir` as every capability its registry entry claims and runs it once.
void open_as_claimed(const fs::path& dir, const Architecture& a) {
  SCOPED_TRACE(dir.string() + " (" + a.model_type + ")");
  if (a.can(Capability::embed_image)) {
    ASSERT_NE(a.open_dual_encoder, nullptr);
    auto m = a.open_dual_encoder(dir, nullptr, Precision::f32);
    EXPECT_EQ(m->text_features(std::vector<std::string>{"a photo of a cat"}).size(),
              static_cast<size_t>(m->dim()));
  } else if (a.can(Capability::embed_text)) {
    ASSERT_NE(a.open_text_encoder, nullptr);
    auto m = a.open_text_encoder(dir, nullptr, Precision::f32);
    EXPECT_EQ(m->embed_texts({"一只猫"}, TextPooling::cls).size(), static_cast<size_t>(m->dim()));
  }
  if (a.can(Capability::transcribe)) {
    ASSERT_NE(a.open_ctc, nullptr);
    auto m = a.open_ctc(dir, Precision::f32);
    EXPECT_GT(m->vocabulary().size(), 0u);
  }
  if (a.can(Capability::classify_sound)) {
    ASSERT_NE(a.open_sound_classifier, nullptr);
    EXPECT_GT(a.open_sound_classifier(dir)->config().num_classes, 0);
  }
  if (a.can(Capability::detect_sound)) {
    EXPECT_NE(SoundDetector::load(dir), nullptr);
  }
  if (a.can(Capability::image_features)) {
    EXPECT_GT(TimmResNet::open(dir)->stage_channels(3), 0);
  }
  if (a.can(Capability::generate)) {
    ASSERT_NE(a.open_generative, nullptr);
    auto m = a.open_generative(dir, nullptr, {}, Precision::f32);
    EXPECT_GT(m->tokenizer().size(), 0u);
    EXPECT_GT(m->language_model().vocab_size(), 0);
  }
}

TEST(ModelRegistry, EveryFixtureFolderOpensAsItsEntryClaims) {
  const auto folders = model_folders(test::fixture(""));
  ASSERT_GE(folders.size(), 8u) << "fixture model folders missing from " << test::fixture("");
  std::set<std::string> seen;
  for (const auto& dir : folders) {
    const Architecture& a = architecture_of(dir);
    seen.insert(a.model_type);
    open_as_claimed(dir, a);
  }
  for (const char* type :
       {"clip", "chinese_clip", "bert", "wav2vec2", "sound_cnn_lstm", "llava", "timm_resnet"})
    EXPECT_TRUE(seen.count(type)) << "no fixture exercises " << type;
}

TEST(ModelRegistry, EveryReferenceFolderGoesThroughTheRegistry) {
  const fs::path reference =
      fs::path(MMFUSE_FIXTURES) / ".." / ".." / ".." / "shared" / "reference";
  const auto folders = model_folders(reference);
  if (folders.empty())
    GTEST_SKIP() << "no ../shared/reference next to the checkout (" << reference << ")";
  for (const auto& dir : folders) {
    const nlohmann::json config = read_json_file(dir / "config.json");
    const std::string type = config.value("model_type", "");
    try {
      open_as_claimed(dir, architecture_of(dir));
    } catch (const Error& e) {
      // Architectures not built yet (the generation issues) are refused by name.
      EXPECT_EQ(e.kind(), ErrorKind::unsupported) << dir << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find("\"" + type + "\""), std::string::npos) << e.what();
      EXPECT_TRUE(type == "blip-2") << dir << " should load: " << e.what();
    }
  }
}

struct TempModelFolder {
  explicit TempModelFolder(const std::string& config) {
    dir = fs::temp_directory_path() /
          ("mmfuse_registry_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    std::ofstream(dir / "config.json") << config;
  }
  ~TempModelFolder() { fs::remove_all(dir); }
  fs::path dir;
};

TEST(ModelRegistry, UnknownTypesAreUnsupportedNamingFileAndType) {
  TempModelFolder f(R"({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]})");
  try {
    architecture_of(f.dir);
    FAIL() << "gpt2 accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unsupported);
    const std::string m = e.what();
    EXPECT_NE(m.find((f.dir / "config.json").string()), std::string::npos) << m;
    EXPECT_NE(m.find("\"gpt2\""), std::string::npos) << m;
    EXPECT_NE(m.find("clip"), std::string::npos) << m;  // names what is supported
  }
}

TEST(ModelRegistry, ArchitecturesNameAFolderWithoutModelType) {
  TempModelFolder f(R"({"architectures": ["Wav2Vec2ForCTC"]})");
  EXPECT_EQ(architecture_of(f.dir).model_type, "wav2vec2");
}

TEST(ModelRegistry, MissingCapabilityNamesWhatCan) {
  try {
    architecture_with(test::fixture("bert/models/bert-tiny-chinese"), Capability::embed_image,
                      "embed images");
    FAIL() << "bert claimed images";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unsupported);
    const std::string m = e.what();
    EXPECT_NE(m.find("text-only"), std::string::npos) << m;
    EXPECT_NE(m.find("clip, chinese_clip"), std::string::npos) << m;
  }
  EXPECT_EQ(architecture_with(test::fixture("clip/models/clip-tiny-gelu-p16"),
                              Capability::embed_image, "x")
                .model_type,
            "clip");
}

TEST(ModelRegistry, MissingFolderAndBadConfigAreTheirOwnKinds) {
  try {
    architecture_of(test::fixture("no/such/model"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::not_found);
  }
  TempModelFolder f("[1, 2");
  try {
    architecture_of(f.dir);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
  }
}

TEST(ModelRegistry, EntriesAreUniqueAndConsistent) {
  std::set<std::string> types;
  for (const Architecture& a : registered_architectures()) {
    EXPECT_TRUE(types.insert(a.model_type).second) << a.model_type;
    EXPECT_FALSE(a.description.empty()) << a.model_type;
    EXPECT_FALSE(a.capability_names().empty()) << a.model_type;
    if (a.can(Capability::embed_image)) {
      EXPECT_NE(a.open_dual_encoder, nullptr) << a.model_type;
    }
    if (a.can(Capability::transcribe)) {
      EXPECT_NE(a.open_ctc, nullptr) << a.model_type;
    }
    if (a.can(Capability::embed_text)) {
      EXPECT_NE(a.text_context_length, nullptr) << a.model_type;
    }
  }
}

}  // namespace
}  // namespace mmfuse
