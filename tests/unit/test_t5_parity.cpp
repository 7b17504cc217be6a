// The T5 language model of BLIP-2 Flan-T5 against transformers 4.44
// (tests/fixtures/blip2, a tiny random folder): the encoder output, the first
// decoder step's logits, every decode step's top-5 logits (HF with a cache),
// greedy and beam generation. The encoder input is the reference's
// language_projection rows followed by the LM's input ids, as BLIP-2 builds it.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "generate/generation_plan.h"
#include "generate/generator.h"
#include "mmfuse/error.h"
#include "models/lora.h"
#include "models/t5.h"
#include "test_util.h"

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

const char* kFolder = "blip2/models/blip2-flan-t5-tiny";
const char* kOutputs = "blip2/outputs/blip2-flan-t5-tiny/";

nlohmann::json text_config() {
  return read_json(fixture(kFolder) / "config.json")["text_config"];
}

class T5Parity : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = WeightStore::open_folder(fixture(kFolder));
    config_ = T5Config::from_json(text_config(), "config.json text_config");
    model_ = std::make_unique<T5Model>(*store_, config_, "language_model.", test::pool_ptr(),
                                       "blip2-flan-t5-tiny");
    outputs_ = read_json(fixture(std::string(kOutputs) + "outputs.json"));
    ref_ =
        std::make_unique<test::Reference>(fixture(std::string(kOutputs) + "outputs.safetensors"));
  }

  // BLIP-2's encoder input: [language_projection (8 rows) ; shared(lm_input_ids)].
  PromptInput prompt_of(int index) const {
    const std::string p = "case" + std::to_string(index) + "_";
    PromptInput prompt;
    PromptSegment queries;
    queries.embeddings = ref_->f32(p + "language_projection");
    queries.rows = queries.embeddings.size() / static_cast<size_t>(config_.d_model);
    PromptSegment text;
    for (int64_t id : ref_->i64(p + "lm_input_ids")) text.ids.push_back(static_cast<int32_t>(id));
    prompt.segments = {queries, text};
    return prompt;
  }

  // The language model's generation config (text_config, not generation_config.json).
  GenerationConfig generation_config() const {
    GenerationConfig g;
    g.max_new_tokens = 16;
    g.eos_token_ids = config_.eos_token_ids;
    g.pad_token_id = config_.pad_token_id;
    g.bos_token_id = config_.bos_token_id;
    g.decoder_start_token_id = config_.decoder_start_token_id;
    return g;
  }

  std::shared_ptr<WeightStore> store_;
  T5Config config_;
  std::unique_ptr<T5Model> model_;
  nlohmann::json outputs_;
  std::unique_ptr<test::Reference> ref_;
};

TEST_F(T5Parity, ConfigFromBlip2TextConfig) {
  EXPECT_EQ(config_.d_model, 8);
  EXPECT_EQ(config_.inner_dim(), 32);
  EXPECT_EQ(config_.d_ff, 32);
  EXPECT_EQ(config_.num_layers, 2);
  EXPECT_EQ(config_.num_decoder_layers, 2);
  EXPECT_TRUE(config_.gated);
  EXPECT_EQ(config_.activation, T5Config::Activation::gelu_tanh);
  EXPECT_FALSE(config_.tie_word_embeddings);
  EXPECT_EQ(config_.decoder_start_token_id, 0);
  EXPECT_EQ(config_.eos_token_ids, std::vector<int32_t>{1});
  EXPECT_EQ(config_.pad_token_id, 0);
  EXPECT_EQ(config_.bos_token_id, 1);
  EXPECT_EQ(model_->decoder_start_token(), 0);
  EXPECT_EQ(model_->vocab_size(), 32128);
}

TEST_F(T5Parity, EncoderOutputAndFirstLogits) {
  double worst_encoder = 0, worst_logits = 0, worst_max = 0, worst_lse = 0;
  for (const auto& c : outputs_["cases"]) {
    const int index = c["case"].get<int>();
    SCOPED_TRACE("case " + std::to_string(index));
    const std::string p = "case" + std::to_string(index) + "_";
    const PromptInput prompt = prompt_of(index);

    const std::vector<float> encoded = model_->encode(prompt);
    const std::vector<float> want_encoded = ref_->f32(p + "encoder_last_hidden_state");
    ASSERT_EQ(encoded.size(), want_encoded.size());
    const double de = test::max_abs_diff(encoded, want_encoded);
    EXPECT_LE(de, bar(want_encoded));
    worst_encoder = std::max(worst_encoder, de / bar(want_encoded) * 1e-4);

    std::vector<float> logits(static_cast<size_t>(model_->vocab_size()));
    auto state = model_->prefill(prompt, logits.data());
    EXPECT_EQ(state->positions(), 1u);
    const std::vector<float> want = ref_->f32(p + "logits_last");
    const double dl = test::max_abs_diff(logits, want);
    EXPECT_LE(dl, bar(want));
    worst_logits = std::max(worst_logits, dl / bar(want) * 1e-4);

    // The per-position stats of that pass (T = 1 for T5: the decoder start token).
    const std::vector<float> all = model_->decoder_logits(prompt, {config_.decoder_start_token_id});
    EXPECT_LE(test::max_abs_diff(all, logits), 1e-5);
    const std::vector<int64_t> want_argmax = ref_->i64(p + "logits_argmax_per_position");
    const std::vector<float> want_max = ref_->f32(p + "logits_max_per_position");
    const std::vector<float> want_lse = ref_->f32(p + "logits_logsumexp_per_position");
    ASSERT_EQ(want_argmax.size(), 1u);
    const size_t best = static_cast<size_t>(std::max_element(all.begin(), all.end()) - all.begin());
    EXPECT_EQ(best, static_cast<size_t>(want_argmax[0]));
    double sum = 0;
    for (float v : all) sum += std::exp(static_cast<double>(v - all[best]));
    const std::vector<float> ours_max{all[best]};
    const std::vector<float> ours_lse{all[best] + static_cast<float>(std::log(sum))};
    EXPECT_LE(test::max_abs_diff(ours_max, want_max), bar(want_max));
    EXPECT_LE(test::max_abs_diff(ours_lse, want_lse), bar(want_lse));
    worst_max = std::max(worst_max, test::max_abs_diff(ours_max, want_max));
    worst_lse = std::max(worst_lse, test::max_abs_diff(ours_lse, want_lse));
  }
  std::printf(
      "[t5] max error relative to scale: encoder %.3g, logits_last %.3g; abs: max %.3g, "
      "logsumexp %.3g\n",
      worst_encoder, worst_logits, worst_max, worst_lse);
}

// Every greedy step through decode() (the cached path): the reference's top-5
// ids and logits of each step (HF with past_key_values).
TEST_F(T5Parity, EveryDecodeStepMatchesCachedReference) {
  double worst = 0;
  for (const auto& c : outputs_["cases"]) {
    const int index = c["case"].get<int>();
    SCOPED_TRACE("case " + std::to_string(index));
    const std::vector<int32_t> generated = ids32(c["generated_ids"]);
    const auto& steps = c["steps"];
    ASSERT_EQ(steps.size() + 1, generated.size());
    const PromptInput prompt = prompt_of(index);
    std::vector<float> logits(static_cast<size_t>(model_->vocab_size()));
    auto state = model_->prefill(prompt, logits.data());
    for (size_t step = 0; step < steps.size(); ++step) {
      SCOPED_TRACE("step " + std::to_string(step));
      if (step > 0) {
        DecoderState* s = state.get();
        model_->decode(&s, &generated[step], 1, logits.data());
      }
      const auto& top = steps[step];
      for (size_t r = 0; r < top["top5_ids"].size(); ++r) {
        const float want = top["top5_scores"][r].get<float>();
        const float got = logits[top["top5_ids"][r].get<size_t>()];
        EXPECT_NEAR(got, want, 1e-4 * std::max(1.0f, std::fabs(want)));
        worst = std::max(worst, static_cast<double>(std::fabs(got - want)));
      }
      EXPECT_EQ(
          static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin()),
          generated[step + 1]);
    }
    // The no-cache pass over the same decoder ids gives the same rows.
    const std::vector<int32_t> decoder_ids(generated.begin(), generated.end() - 1);
    const std::vector<float> full = model_->decoder_logits(prompt, decoder_ids);
    const size_t vocab = logits.size();
    EXPECT_LE(
        test::max_abs_diff(full.data() + (decoder_ids.size() - 1) * vocab, logits.data(), vocab),
        1e-4);
  }
  std::printf("[t5] decode steps: max abs error of the top-5 logits %.3g\n", worst);
}

TEST_F(T5Parity, GreedyAndBeamGeneration) {
  for (const auto& c : outputs_["cases"]) {
    const int index = c["case"].get<int>();
    SCOPED_TRACE("case " + std::to_string(index));
    GenerationRequest request;
    request.model = model_.get();
    request.prompt = prompt_of(index);
    request.config = generation_config();
    const GenerationResult greedy = generate(request);
    ASSERT_EQ(greedy.sequences.size(), 1u);
    // transformers returns [decoder_start] + new tokens.
    std::vector<int32_t> ours{model_->decoder_start_token()};
    ours.insert(ours.end(), greedy.sequences[0].tokens.begin(), greedy.sequences[0].tokens.end());
    EXPECT_EQ(ours, ids32(c["generated_ids"]));
    EXPECT_EQ(greedy.sequences[0].finish_reason, FinishReason::length);

    if (c.contains("beam3") && c["beam3"].is_object()) {
      request.config.num_beams = 3;
      const GenerationResult beam = generate(request);
      ASSERT_FALSE(beam.sequences.empty());
      std::vector<int32_t> best{model_->decoder_start_token()};
      best.insert(best.end(), beam.sequences[0].tokens.begin(), beam.sequences[0].tokens.end());
      EXPECT_EQ(best, ids32(c["beam3"]["generated_ids"]));
      EXPECT_NEAR(beam.sequences[0].score, c["beam3"]["sequences_score"].get<double>(), 1e-4);
    }
  }
}

// One batched decode of several sequences equals each decoded alone, and a
// cloned state (beam search) continues independently of its source.
TEST_F(T5Parity, BatchedDecodeEqualsSingle) {
  const size_t vocab = static_cast<size_t>(model_->vocab_size());
  std::vector<std::unique_ptr<DecoderState>> batch_states, single_states;
  std::vector<float> logits(vocab);
  for (int i = 0; i < 3; ++i) {
    batch_states.push_back(model_->prefill(prompt_of(i), logits.data()));
    single_states.push_back(batch_states.back()->clone());
  }
  batch_states.push_back(batch_states[1]->clone());  // a fourth, forked from case 1
  single_states.push_back(batch_states[1]->clone());
  const std::vector<std::vector<int32_t>> feeds = {
      {5, 77, 31000}, {19, 2, 4}, {1, 8, 9}, {3, 3, 3}};
  for (size_t step = 0; step < 3; ++step) {
    std::vector<DecoderState*> ptrs;
    std::vector<int32_t> tokens;
    for (size_t s = 0; s < batch_states.size(); ++s) {
      ptrs.push_back(batch_states[s].get());
      tokens.push_back(feeds[s][step]);
    }
    std::vector<float> batched(ptrs.size() * vocab);
    model_->decode(ptrs.data(), tokens.data(), ptrs.size(), batched.data());
    for (size_t s = 0; s < single_states.size(); ++s) {
      DecoderState* one = single_states[s].get();
      model_->decode(&one, &tokens[s], 1, logits.data());
      EXPECT_LE(test::max_abs_diff(batched.data() + s * vocab, logits.data(), vocab), 1e-5)
          << "sequence " << s << " step " << step;
    }
  }
  EXPECT_EQ(batch_states[3]->positions(), 4u);
  EXPECT_GT(batch_states[3]->cache_bytes(), 0u);
}

TEST(T5Buckets, MatchTransformers) {
  // torch's _relative_position_bucket(…, num_buckets=32, max_distance=128).
  const int64_t bi_rel[] = {-200, -129, -128, -100, -64, -33, -32, -16, -15, -9,  -8, -7,
                            -1,   0,    1,    7,    8,   15,  16,  32,  100, 128, 200};
  const int bi_want[] = {15, 15, 15, 15, 14, 12, 12, 10, 9,  8,  8, 7,
                         1,  0,  17, 23, 24, 25, 26, 28, 31, 31, 31};
  for (size_t i = 0; i < std::size(bi_rel); ++i)
    EXPECT_EQ(t5_relative_position_bucket(bi_rel[i], true, 32, 128), bi_want[i]) << bi_rel[i];
  const int64_t uni_rel[] = {0,   -1,  -7,  -8,   -15,  -16,  -17,  -31,
                             -32, -33, -64, -100, -127, -128, -1000};
  const int uni_want[] = {0, 1, 7, 8, 15, 16, 16, 21, 21, 21, 26, 30, 31, 31, 31};
  for (size_t i = 0; i < std::size(uni_rel); ++i)
    EXPECT_EQ(t5_relative_position_bucket(uni_rel[i], false, 32, 128), uni_want[i]) << uni_rel[i];
  EXPECT_EQ(t5_relative_position_bucket(5, false, 32, 128), 0);  // future keys: bucket 0 (masked)
}

ErrorKind kind_of(const std::function<void()>& fn, std::string* message = nullptr) {
  try {
    fn();
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.kind();
  }
  ADD_FAILURE() << "no error";
  return ErrorKind::internal;
}

TEST(T5Config, BadValuesNameTheField) {
  std::string msg;
  nlohmann::json c = text_config();
  c["feed_forward_proj"] = "gated-foo";
  c.erase("dense_act_fn");
  EXPECT_EQ(kind_of([&] { T5Config::from_json(c, "cfg"); }, &msg), ErrorKind::unsupported);
  EXPECT_NE(msg.find("feed_forward_proj"), std::string::npos) << msg;

  c["feed_forward_proj"] = "relu-gated";
  EXPECT_EQ(kind_of([&] { T5Config::from_json(c, "cfg"); }, &msg), ErrorKind::bad_input);
  EXPECT_NE(msg.find("feed_forward_proj"), std::string::npos) << msg;

  c["feed_forward_proj"] = "gated-silu";
  T5Config silu = T5Config::from_json(c, "cfg");
  EXPECT_TRUE(silu.gated);
  EXPECT_EQ(silu.activation, T5Config::Activation::silu);

  // A dense_act_fn in the file wins over feed_forward_proj, as in transformers.
  c["dense_act_fn"] = "gelu_new";
  EXPECT_EQ(T5Config::from_json(c, "cfg").activation, T5Config::Activation::gelu_tanh);
  c["dense_act_fn"] = "mish";
  EXPECT_EQ(kind_of([&] { T5Config::from_json(c, "cfg"); }, &msg), ErrorKind::unsupported);
  EXPECT_NE(msg.find("dense_act_fn"), std::string::npos) << msg;

  nlohmann::json d = text_config();
  d["d_kv"] = 0;
  EXPECT_EQ(kind_of([&] { T5Config::from_json(d, "cfg"); }, &msg), ErrorKind::bad_input);
  EXPECT_NE(msg.find("d_kv"), std::string::npos) << msg;
  d = text_config();
  d["model_type"] = "umt5";
  EXPECT_EQ(kind_of([&] { T5Config::from_json(d, "cfg"); }, &msg), ErrorKind::unsupported);
  EXPECT_NE(msg.find("model_type"), std::string::npos) << msg;
  d = text_config();
  d["decoder_start_token_id"] = nullptr;
  d["bos_token_id"] = nullptr;
  EXPECT_EQ(kind_of([&] { T5Config::from_json(d, "cfg"); }, &msg), ErrorKind::bad_input);
  EXPECT_NE(msg.find("decoder_start_token_id"), std::string::npos) << msg;

  // T5Config's class defaults: relu, tied head, eos 1, num_decoder_layers = num_layers; the
  // decoder start has no default (generate() raises without it or a bos id).
  EXPECT_EQ(kind_of([&] {
              T5Config::from_json(nlohmann::json{{"num_layers", 3}}, "cfg");
            }),
            ErrorKind::bad_input);
  const T5Config defaults =
      T5Config::from_json(nlohmann::json{{"num_layers", 3}, {"decoder_start_token_id", 0}}, "cfg");
  EXPECT_EQ(defaults.activation, T5Config::Activation::relu);
  EXPECT_FALSE(defaults.gated);
  EXPECT_TRUE(defaults.tie_word_embeddings);
  EXPECT_EQ(defaults.num_decoder_layers, 3);
  EXPECT_EQ(defaults.decoder_start_token_id, 0);
  EXPECT_EQ(defaults.eos_token_ids, std::vector<int32_t>{1});
  EXPECT_EQ(defaults.max_positions, kT5DefaultMaxPositions);
}

TEST(T5Model, MissingTensorsAreNamed) {
  auto store = WeightStore::open_folder(fixture(kFolder));
  const T5Config config = T5Config::from_json(text_config(), "cfg");
  std::string msg;
  EXPECT_EQ(kind_of([&] { T5Model(*store, config, "text_model.", test::pool_ptr(), "x"); }, &msg),
            ErrorKind::bad_input);
  EXPECT_NE(msg.find("text_model.shared.weight"), std::string::npos) << msg;
  // Three decoder layers where the file has two.
  T5Config deeper = config;
  deeper.num_decoder_layers = 3;
  EXPECT_EQ(
      kind_of([&] { T5Model(*store, deeper, "language_model.", test::pool_ptr(), "x"); }, &msg),
      ErrorKind::bad_input);
  EXPECT_NE(msg.find("language_model.decoder.block.2."), std::string::npos) << msg;
  // Not gated: wants DenseReluDense.wi, which this file does not have.
  T5Config relu = config;
  relu.gated = false;
  EXPECT_EQ(kind_of([&] { T5Model(*store, relu, "language_model.", test::pool_ptr(), "x"); }, &msg),
            ErrorKind::bad_input);
  EXPECT_NE(msg.find("DenseReluDense.wi.weight"), std::string::npos) << msg;
}

TEST(T5Model, TooLongInputIsBadInput) {
  auto store = WeightStore::open_folder(fixture(kFolder));
  T5Config config = T5Config::from_json(text_config(), "cfg");
  config.max_positions = 6;
  const T5Model model(*store, config, "language_model.", test::pool_ptr(), "t5");
  std::vector<float> logits(static_cast<size_t>(model.vocab_size()));
  PromptInput too_long;
  too_long.segments.push_back({{5, 6, 7, 8, 9, 10, 1}, {}, 0});
  EXPECT_EQ(kind_of([&] { model.prefill(too_long, logits.data()); }), ErrorKind::bad_input);
  GenerationRequest request;
  request.model = &model;
  request.prompt = too_long;
  request.config.max_new_tokens = 4;
  EXPECT_EQ(kind_of([&] { generate(request); }), ErrorKind::bad_input);

  // A prompt that fits: the decoder stops at max_positions with finish_reason length.
  PromptInput fits;
  fits.segments.push_back({{5, 6, 1}, {}, 0});
  request.prompt = fits;
  request.config.max_new_tokens = 16;
  request.config.eos_token_ids = {};  // so that only the length can stop it
  const GenerationResult r = generate(request);
  EXPECT_EQ(r.sequences[0].tokens.size(), 5u);  // positions 1..5 after the start token
  EXPECT_EQ(r.sequences[0].finish_reason, FinishReason::length);

  // decode() past the limit is refused too.
  auto state = model.prefill(fits, logits.data());
  DecoderState* s = state.get();
  const int32_t token = 5;
  for (int i = 0; i < 5; ++i) model.decode(&s, &token, 1, logits.data());
  EXPECT_EQ(kind_of([&] { model.decode(&s, &token, 1, logits.data()); }), ErrorKind::bad_input);
  const LoraAdapter adapter;
  EXPECT_EQ(kind_of([&] { model.prefill(fits, logits.data(), &adapter); }), ErrorKind::unsupported);
}

}  // namespace
}  // namespace mmfuse
