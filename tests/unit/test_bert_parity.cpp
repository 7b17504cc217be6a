// BERT parity against the Hugging Face BertModel outputs in tests/fixtures/bert
// (bars from the fixtures' README: 1e-4 max abs on hidden states and pooled outputs).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <regex>

#include "core/thread_pool.h"
#include "io/model_folder.h"
#include "io/safetensors.h"
#include "mmfuse/embedder.h"
#include "models/bert.h"
#include "test_util.h"

namespace mmfuse {
namespace {

using test::fixture;
using test::max_abs_diff;
using test::Reference;

constexpr size_t kLen = 52;

class BertParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = BertModel::load(fixture("bert/models/bert-tiny-chinese")).release();
    ref_ = new Reference(fixture("bert/outputs/bert-tiny-chinese/outputs.safetensors"));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete ref_;
  }

  // The reference inputs ("" or "pair_") as a batch.
  static TokenBatch tokens(const std::string& prefix) {
    TokenBatch batch;
    const std::vector<int64_t> ids = ref_->i64(prefix + "input_ids"),
                               mask = ref_->i64(prefix + "attention_mask"),
                               types = ref_->i64(prefix + "token_type_ids");
    for (size_t b = 0; b * kLen < ids.size(); ++b) {
      auto row = [&](const std::vector<int64_t>& v) {
        return std::vector<int64_t>(v.begin() + static_cast<long>(b * kLen),
                                    v.begin() + static_cast<long>((b + 1) * kLen));
      };
      batch.input_ids.push_back(row(ids));
      batch.attention_mask.push_back(row(mask));
      batch.token_type_ids.push_back(row(types));
    }
    return batch;
  }

  // Rows 0, kLen, 2*kLen, ... of a [batch*kLen, hidden] tensor.
  static std::vector<float> cls_rows(const std::vector<float>& x, size_t batch, size_t hidden) {
    std::vector<float> out;
    for (size_t b = 0; b < batch; ++b)
      out.insert(out.end(), x.begin() + static_cast<long>(b * kLen * hidden),
                 x.begin() + static_cast<long>(b * kLen * hidden + hidden));
    return out;
  }

  static BertModel* model_;
  static Reference* ref_;
};
BertModel* BertParity::model_ = nullptr;
Reference* BertParity::ref_ = nullptr;

TEST_F(BertParity, HiddenStatesAndLastHiddenStateMatch) {
  TowerTrace trace;
  trace.keep_hidden_states = true;
  std::vector<float> x = model_->encoder().forward(test::pool(), tokens(""), &trace);
  ASSERT_EQ(trace.hidden_states.size(), 3u);
  double worst_layer = 0;
  for (size_t k = 0; k < trace.hidden_states.size(); ++k) {
    const double e = max_abs_diff(trace.hidden_states[k],
                                  ref_->f32("hidden_states_input0_layer" + std::to_string(k)));
    worst_layer = std::max(worst_layer, e);
    EXPECT_LE(e, 1e-4) << "layer " << k;
  }
  // Every position, padding included, as HF computes it.
  const double last = max_abs_diff(x, ref_->f32("last_hidden_state"));
  EXPECT_LE(last, 1e-4);
  std::printf("[parity] bert-tiny-chinese hidden states %.2e, last_hidden_state %.2e\n",
              worst_layer, last);
}

TEST_F(BertParity, PoolerOutputMatches) {
  const TokenBatch t = tokens("");
  const double pooled = max_abs_diff(
      model_->encoder().pooled(test::pool(), t, TextPooling::pooler), ref_->f32("pooler_output"));
  EXPECT_LE(pooled, 1e-4);
  const std::vector<float> last = ref_->f32("last_hidden_state");
  const double cls = max_abs_diff(model_->encoder().pooled(test::pool(), t, TextPooling::cls),
                                  cls_rows(last, 8, 32));
  EXPECT_LE(cls, 1e-4);
  std::printf("[parity] bert-tiny-chinese pooler_output %.2e, cls %.2e\n", pooled, cls);
}

TEST_F(BertParity, SentencePairsMatch) {
  const TokenBatch t = tokens("pair_");
  ASSERT_EQ(t.input_ids.size(), 2u);
  EXPECT_LE(max_abs_diff(model_->encoder().forward(test::pool(), t),
                         ref_->f32("pair_last_hidden_state")),
            1e-4);
  EXPECT_LE(max_abs_diff(model_->encoder().pooled(test::pool(), t, TextPooling::pooler),
                         ref_->f32("pair_pooler_output")),
            1e-4);
  // Token types matter: the same ids with all types 0 give other states.
  TokenBatch zero = t;
  for (auto& row : zero.token_type_ids) std::fill(row.begin(), row.end(), 0);
  EXPECT_GT(max_abs_diff(model_->encoder().forward(test::pool(), zero),
                         ref_->f32("pair_last_hidden_state")),
            1e-3);
}

TEST_F(BertParity, TextsEndToEndWithoutPadding) {
  // From the texts, cut at the reference's 52 tokens but not padded: the pooled
  // vectors equal the padded reference's.
  const nlohmann::json out = read_json_file(fixture("bert/outputs/bert-tiny-chinese/outputs.json"));
  const auto texts = out.at("texts").get<std::vector<std::string>>();
  const TokenBatch unpadded = model_->tokenizer().encode_batch(texts, kLen, /*pad=*/false);
  const std::vector<float> last = ref_->f32("last_hidden_state");
  auto pooled = [&](TextPooling p) {
    return model_->encoder().pooled(test::pool(), unpadded, p);
  };
  const double cls = max_abs_diff(pooled(TextPooling::cls), cls_rows(last, 8, 32));
  EXPECT_LE(cls, 1e-4);
  EXPECT_LE(max_abs_diff(pooled(TextPooling::pooler), ref_->f32("pooler_output")), 1e-4);
  // embed_texts cuts at 512 tokens, not 52: the short texts (all but the last) agree.
  const std::vector<float> cls7 = model_->embed_texts(
      std::vector<std::string>(texts.begin(), texts.end() - 1), TextPooling::cls);
  EXPECT_LE(max_abs_diff(cls7.data(), cls_rows(last, 7, 32).data(), 7 * 32), 1e-4);
  // Mean pooling over the attended positions of the reference last_hidden_state.
  const std::vector<int64_t> mask = ref_->i64("attention_mask");
  std::vector<float> mean(8 * 32, 0.0f);
  for (size_t b = 0; b < 8; ++b) {
    double count = 0;
    std::vector<double> sum(32, 0.0);
    for (size_t t = 0; t < kLen; ++t) {
      if (mask[b * kLen + t] == 0) continue;
      for (size_t i = 0; i < 32; ++i) sum[i] += last[(b * kLen + t) * 32 + i];
      count += 1;
    }
    for (size_t i = 0; i < 32; ++i) mean[b * 32 + i] = static_cast<float>(sum[i] / count);
  }
  const double m = max_abs_diff(pooled(TextPooling::mean), mean);
  EXPECT_LE(m, 1e-4);
  std::printf("[parity] bert-tiny-chinese from texts: cls %.2e, mean %.2e\n", cls, m);
}

TEST(BertEmbedder, TextOnlyThroughThePublicApi) {
  auto e = Embedder::open(fixture("bert/models/bert-tiny-chinese").string());
  EXPECT_FALSE(e->embeds_images());
  EXPECT_EQ(e->dim(), 32);
  EmbedOptions raw;
  raw.normalize = false;
  std::vector<std::vector<float>> v = e->embed_texts({"一只猫", "a photo of a cat"}, raw);
  ASSERT_EQ(v.size(), 2u);
  auto unit = e->embed_texts({"一只猫"});
  double norm = 0;
  for (float f : unit[0]) norm += static_cast<double>(f) * f;
  EXPECT_NEAR(norm, 1.0, 1e-5);
  EXPECT_NEAR(test::cosine(unit[0].data(), v[0].data(), 32), 1.0, 1e-6);
  EmbedOptions bad;
  bad.pooling = "max";
  EXPECT_THROW(e->embed_texts({"x"}, bad), Error);
  try {
    e->embed_image_files({fixture("images/img0_photo_640x480_rgb.jpg").string()});
    ADD_FAILURE() << "a text-only model embedded an image";
  } catch (const Error& err) {
    EXPECT_EQ(err.kind(), ErrorKind::bad_input);
    EXPECT_NE(std::string(err.what()).find("text-only"), std::string::npos) << err.what();
  }
  EXPECT_THROW(e->classify(fixture("images/img0_photo_640x480_rgb.jpg").string(), {"a"}), Error);
}

TEST(BertModel, LoadsTaskCheckpointNamesAndTfEraLayerNorms) {
  // A copy of the fixture as old task checkpoints name it: "bert." prefix,
  // LayerNorm gamma/beta, a head tensor, and no pooler.
  namespace fs = std::filesystem;
  const fs::path src = fixture("bert/models/bert-tiny-chinese");
  const fs::path dir =
      fs::temp_directory_path() / ("mmfuse_bert_legacy_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (const char* f :
       {"config.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"})
    fs::copy_file(src / f, dir / f, fs::copy_options::overwrite_existing);
  std::vector<TensorToWrite> out;
  const SafetensorsFile file = SafetensorsFile::open(src / "model.safetensors");
  for (const auto& [name, t] : file.tensors()) {
    if (name.rfind("pooler.", 0) == 0) continue;
    std::string renamed = "bert." + name;
    renamed = std::regex_replace(renamed, std::regex("LayerNorm\\.weight$"), "LayerNorm.gamma");
    renamed = std::regex_replace(renamed, std::regex("LayerNorm\\.bias$"), "LayerNorm.beta");
    out.push_back({renamed, t.dtype, t.shape, std::vector<uint8_t>(t.data, t.data + t.nbytes)});
  }
  out.push_back({"cls.predictions.bias", DType::F32, {2}, std::vector<uint8_t>(8, 0)});
  write_safetensors(dir / "model.safetensors", out);
  {
    auto m = BertModel::load(dir);
    EXPECT_FALSE(m->encoder().has_pooler());
    const TokenBatch t =
        m->tokenizer().encode_batch({"一只黑色的猫坐在沙发上"}, kLen, /*pad=*/false);
    const std::vector<float> last =
        Reference(fixture("bert/outputs/bert-tiny-chinese/outputs.safetensors"))
            .f32("last_hidden_state");
    const std::vector<float> cls = m->encoder().pooled(test::pool(), t, TextPooling::cls);
    EXPECT_LE(max_abs_diff(cls.data(), last.data(), 32), 1e-4);
    EXPECT_THROW(m->encoder().pooled(test::pool(), t, TextPooling::pooler), Error);
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}

TEST(BertModel, BadInputsAreClearErrors) {
  auto m = BertModel::load(fixture("bert/models/bert-tiny-chinese"));
  TokenBatch t;
  t.input_ids = {{101, 999999, 102}};
  t.attention_mask = {{1, 1, 1}};
  EXPECT_THROW(m->encoder().forward(test::pool(), t), Error);
  t.input_ids = {{101, 102}};
  EXPECT_THROW(m->encoder().forward(test::pool(), t), Error);  // mask row length differs
  t.attention_mask = {{1, 1}};
  t.token_type_ids = {{0, 5}};
  EXPECT_THROW(m->encoder().forward(test::pool(), t), Error);
  t.token_type_ids.clear();
  t.input_ids = {std::vector<int64_t>(513, 101)};
  t.attention_mask = {std::vector<int64_t>(513, 1)};
  EXPECT_THROW(m->encoder().forward(test::pool(), t), Error);
  // A long text is cut to the context length instead.
  std::string long_text;
  for (int i = 0; i < 700; ++i) long_text += "猫";
  EXPECT_EQ(m->embed_texts({long_text}, TextPooling::cls).size(), 32u);
  EXPECT_THROW(parse_text_pooling("max"), Error);
  EXPECT_THROW(
      BertConfig::from_json(nlohmann::json{{"hidden_size", 30}, {"num_attention_heads", 4}}, "cfg"),
      Error);
  EXPECT_THROW(
      BertConfig::from_json(nlohmann::json{{"position_embedding_type", "relative_key"}}, "cfg"),
      Error);
}

}  // namespace
}  // namespace mmfuse
