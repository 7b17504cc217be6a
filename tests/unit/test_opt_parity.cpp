// The OPT decoder of BLIP-2 OPT against transformers 4.44
// (tests/fixtures/blip2, a tiny random blip2-opt folder): the prompt is built
// from the reference language_projection rows and lm_input_ids, so these
// tests check the language model alone: first-step and per-position logits,
// greedy and beam generation. Bars from the fixture README.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "generate/generator.h"
#include "mmfuse/error.h"
#include "models/lora.h"
#include "models/opt.h"
#include "test_util.h"

namespace mmfuse {
namespace {

using test::fixture;

constexpr const char* kFolder = "blip2/models/blip2-opt-tiny";
constexpr const char* kOutputs = "blip2/outputs/blip2-opt-tiny/";
constexpr const char* kPrefix = "language_model.";

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

// Expects `fn` to throw an Error of `kind` whose message contains `needle`.
template <class Fn>
void expect_error(Fn fn, ErrorKind kind, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected an error naming " << needle;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

class OptParity : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = WeightStore::open_folder(fixture(kFolder));
    text_config_ = read_json(fixture(std::string(kFolder) + "/config.json"))["text_config"];
    config_ = OptConfig::from_json(text_config_, "config.json text_config");
    model_ = std::make_unique<OptModel>(*store_, config_, kPrefix, test::pool_ptr(), "opt-tiny");
    outputs_ = read_json(fixture(std::string(kOutputs) + "outputs.json"));
    ref_ =
        std::make_unique<test::Reference>(fixture(std::string(kOutputs) + "outputs.safetensors"));
  }

  // BLIP-2's language model input: [language_projection rows ; embed_tokens(lm_input_ids)].
  PromptInput prompt_of(int index) const {
    const std::string p = "case" + std::to_string(index) + "_";
    PromptSegment queries;
    queries.embeddings = ref_->f32(p + "language_projection");
    queries.rows = queries.embeddings.size() / static_cast<size_t>(model_->hidden_size());
    PromptSegment text;
    for (int64_t id : ref_->i64(p + "lm_input_ids")) text.ids.push_back(static_cast<int32_t>(id));
    PromptInput prompt;
    prompt.context_ids = text.ids;
    prompt.segments = {std::move(queries), std::move(text)};
    return prompt;
  }

  // The language model's generation config (text_config), not the folder's
  // generation_config.json: BLIP-2 calls language_model.generate().
  GenerationConfig generation_config() const {
    GenerationConfig g;
    g.max_new_tokens = 16;
    g.eos_token_ids = config_.eos_token_ids;
    g.bos_token_id = config_.bos_token_id;
    g.pad_token_id = config_.pad_token_id;
    return g;
  }

  std::shared_ptr<WeightStore> store_;
  nlohmann::json text_config_;
  OptConfig config_;
  std::unique_ptr<OptModel> model_;
  nlohmann::json outputs_;
  std::unique_ptr<test::Reference> ref_;
};

TEST_F(OptParity, ConfigFromBlip2TextConfig) {
  EXPECT_EQ(config_.hidden_size, 8);
  EXPECT_EQ(config_.ffn_dim, 32);
  EXPECT_EQ(config_.num_hidden_layers, 2);
  EXPECT_EQ(config_.num_attention_heads, 2);
  EXPECT_EQ(config_.max_position_embeddings, 2048);
  EXPECT_EQ(config_.vocab_size, 50272);
  EXPECT_EQ(config_.word_embed_proj_dim, 8);
  EXPECT_TRUE(config_.do_layer_norm_before);
  EXPECT_TRUE(config_.has_final_layer_norm());
  EXPECT_TRUE(config_.tie_word_embeddings);
  EXPECT_EQ(config_.eos_token_ids, std::vector<int32_t>{50118});
  EXPECT_EQ(config_.bos_token_id, 2);
  EXPECT_EQ(config_.pad_token_id, 1);
  EXPECT_EQ(model_->vocab_size(), 50272);
  EXPECT_EQ(model_->max_positions(), 2048u);
}

TEST_F(OptParity, PromptLogits) {
  for (const auto& c : outputs_["cases"]) {
    const int index = c["case"].get<int>();
    SCOPED_TRACE("case " + std::to_string(index));
    const std::string p = "case" + std::to_string(index) + "_";
    const PromptInput prompt = prompt_of(index);

    std::vector<float> logits(static_cast<size_t>(model_->vocab_size()));
    const auto state = model_->prefill(prompt, logits.data());
    EXPECT_EQ(state->positions(), prompt.length());
    const std::vector<float> want = ref_->f32(p + "logits_last");
    const double last_error = test::max_abs_diff(logits, want);
    EXPECT_LE(last_error, bar(want));

    // Every position of the prompt pass: argmax exact, max and logsumexp within the bar.
    const std::vector<float> all = model_->prompt_logits(prompt);
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
    const double max_error = test::max_abs_diff(ours_max, want_max);
    const double lse_error = test::max_abs_diff(ours_lse, want_lse);
    EXPECT_LE(max_error, bar(want_max));
    EXPECT_LE(lse_error, bar(want_lse));
    // The last row of the full pass is the prefill's logits.
    EXPECT_LE(test::max_abs_diff(&all[(length - 1) * vocab], logits.data(), vocab), 1e-5);
    std::printf("[ opt case %d ] max abs error: logits_last %.3g, max %.3g, logsumexp %.3g\n",
                index, last_error, max_error, lse_error);
  }
}

TEST_F(OptParity, GreedyAndBeamGeneration) {
  for (const auto& c : outputs_["cases"]) {
    const int index = c["case"].get<int>();
    SCOPED_TRACE("case " + std::to_string(index));
    GenerationRequest request;
    request.model = model_.get();
    request.prompt = prompt_of(index);
    request.config = generation_config();
    // BLIP-2 returns [bos] + new tokens: the prompt is not echoed.
    const std::vector<int32_t> full = ids32(c["generated_ids"]);
    ASSERT_EQ(full.front(), config_.bos_token_id);
    const std::vector<int32_t> want(full.begin() + 1, full.end());
    const GenerationResult greedy = generate(request);
    ASSERT_EQ(greedy.sequences.size(), 1u);
    EXPECT_EQ(greedy.sequences[0].tokens, want);
    EXPECT_EQ(greedy.prompt_positions, request.prompt.length());

    if (c.contains("beam3") && c["beam3"].is_object()) {
      request.config.num_beams = 3;
      const GenerationResult beam = generate(request);
      const std::vector<int32_t> beam_full = ids32(c["beam3"]["generated_ids"]);
      const std::vector<int32_t> beam_want(beam_full.begin() + 1, beam_full.end());
      ASSERT_FALSE(beam.sequences.empty());
      EXPECT_EQ(beam.sequences[0].tokens, beam_want);
      EXPECT_NEAR(beam.sequences[0].score, c["beam3"]["sequences_score"].get<double>(), 1e-4);
    }
  }
}

// Many sequences in one decode call give each sequence's own logits: the
// batched step equals stepping each sequence alone.
TEST_F(OptParity, BatchedDecodeEqualsSingle) {
  const PromptInput a = prompt_of(0), b = prompt_of(1);
  const size_t vocab = static_cast<size_t>(model_->vocab_size());
  std::vector<float> la(vocab), lb(vocab);
  auto sa = model_->prefill(a, la.data());
  auto sb = model_->prefill(b, lb.data());
  auto sa1 = sa->clone(), sb1 = sb->clone();
  const int32_t tokens[2] = {17983, 2590};
  std::vector<float> batched(2 * vocab), single(vocab);
  DecoderState* both[2] = {sa.get(), sb.get()};
  model_->decode(both, tokens, 2, batched.data());
  DecoderState* one = sa1.get();
  model_->decode(&one, &tokens[0], 1, single.data());
  EXPECT_LE(test::max_abs_diff(batched.data(), single.data(), vocab), 1e-5);
  one = sb1.get();
  model_->decode(&one, &tokens[1], 1, single.data());
  EXPECT_LE(test::max_abs_diff(batched.data() + vocab, single.data(), vocab), 1e-5);
  EXPECT_EQ(sa->positions(), a.length() + 1);
  EXPECT_EQ(sb->positions(), b.length() + 1);
  EXPECT_GT(sa->cache_bytes(), 0u);

  // Prefill then decode equals the full pass over the longer prompt.
  PromptInput longer = a;
  longer.segments.back().ids.push_back(tokens[0]);
  const std::vector<float> all = model_->prompt_logits(longer);
  EXPECT_LE(test::max_abs_diff(&all[(longer.length() - 1) * vocab], batched.data(), vocab), 1e-4);
}

// The unmerged LoRA hooks (per sequence, y += s B A x) equal a model built
// from merged weights; a sequence without the adapter is unchanged.
TEST_F(OptParity, UnmergedLoraEqualsMergedWeights) {
  LoraAdapter adapter;
  uint32_t seed = 7;
  auto noise = [&seed] {
    seed = seed * 1664525u + 1013904223u;
    return static_cast<float>(seed >> 8) / static_cast<float>(1u << 24) - 0.5f;
  };
  const std::pair<const char*, std::pair<int, int>> targets[] = {
      {"layers.0.self_attn.q_proj", {8, 8}},
      {"layers.1.self_attn.out_proj", {8, 8}},
      {"layers.1.fc2", {32, 8}}};
  for (const auto& [module, shape] : targets) {
    LoraWeights w;
    w.r = 2;
    w.in = shape.first;
    w.out = shape.second;
    w.scale = 2.0f;
    for (int i = 0; i < w.r * w.in; ++i) w.a.push_back(noise());
    for (int i = 0; i < w.out * w.r; ++i) w.b.push_back(noise());
    adapter.modules[std::string(kPrefix) + "model.decoder." + module] = w;
  }
  auto merged_store = WeightStore::open_folder(fixture(kFolder));
  merge_lora_into(adapter, *merged_store);
  const OptModel merged(*merged_store, config_, kPrefix, test::pool_ptr(), "merged");

  const PromptInput prompt = prompt_of(1);
  const size_t vocab = static_cast<size_t>(model_->vocab_size());
  std::vector<float> plain(vocab), hooked(vocab), want(vocab);
  auto plain_state = model_->prefill(prompt, plain.data());
  auto hooked_state = model_->prefill(prompt, hooked.data(), &adapter);
  auto merged_state = merged.prefill(prompt, want.data());
  EXPECT_LE(test::max_abs_diff(hooked, want), 1e-4);
  EXPECT_GT(test::max_abs_diff(hooked, plain), 1e-2);  // the adapter does something
  // One batched step of a sequence with the adapter and one without.
  const int32_t tokens[2] = {17983, 17983};
  std::vector<float> batched(2 * vocab), merged_step(vocab), plain_step(vocab);
  DecoderState* both[2] = {hooked_state.get(), plain_state.get()};
  model_->decode(both, tokens, 2, batched.data());
  DecoderState* one = merged_state.get();
  merged.decode(&one, tokens, 1, merged_step.data());
  EXPECT_LE(test::max_abs_diff(batched.data(), merged_step.data(), vocab), 1e-4);
  auto fresh = model_->prefill(prompt, plain_step.data());
  one = fresh.get();
  model_->decode(&one, tokens, 1, plain_step.data());
  EXPECT_LE(test::max_abs_diff(batched.data() + vocab, plain_step.data(), vocab), 1e-5);
}

TEST_F(OptParity, BadInputsAreClearErrors) {
  // A tensor the config asks for but the file lacks is named.
  nlohmann::json deeper = text_config_;
  deeper["num_hidden_layers"] = 3;
  const OptConfig three = OptConfig::from_json(deeper, "config.json text_config");
  expect_error([&] { OptModel(*store_, three, kPrefix, test::pool_ptr(), "x"); },
               ErrorKind::bad_input, "language_model.model.decoder.layers.2.");
  nlohmann::json untied = text_config_;
  untied["tie_word_embeddings"] = false;
  const OptConfig untied_config = OptConfig::from_json(untied, "config.json text_config");
  expect_error([&] { OptModel(*store_, untied_config, kPrefix, test::pool_ptr(), "x"); },
               ErrorKind::bad_input, "language_model.lm_head.weight");
  expect_error([&] { OptModel(*store_, config_, "", test::pool_ptr(), "x"); }, ErrorKind::bad_input,
               "model.decoder.embed_tokens.weight");

  // Unsupported or malformed config values name the field.
  nlohmann::json act = text_config_;
  act["activation_function"] = "swiglu";
  expect_error([&] { OptConfig::from_json(act, "config.json text_config"); },
               ErrorKind::unsupported, "activation_function");
  nlohmann::json heads = text_config_;
  heads["num_attention_heads"] = 3;
  expect_error([&] { OptConfig::from_json(heads, "config.json text_config"); },
               ErrorKind::bad_input, "num_attention_heads");
  nlohmann::json negative = text_config_;
  negative["ffn_dim"] = -4;
  expect_error([&] { OptConfig::from_json(negative, "config.json text_config"); },
               ErrorKind::bad_input, "ffn_dim");
  nlohmann::json wrong_type = text_config_;
  wrong_type["do_layer_norm_before"] = "yes";
  expect_error([&] { OptConfig::from_json(wrong_type, "config.json text_config"); },
               ErrorKind::bad_input, "do_layer_norm_before");
  nlohmann::json t5 = text_config_;
  t5["model_type"] = "t5";
  expect_error([&] { OptConfig::from_json(t5, "config.json text_config"); }, ErrorKind::unsupported,
               "model_type");

  // Prompts: longer than max_position_embeddings, empty, ids outside the vocabulary.
  std::vector<float> logits(static_cast<size_t>(model_->vocab_size()));
  PromptInput long_prompt;
  long_prompt.segments.push_back({std::vector<int32_t>(2049, 100), {}, 0});
  expect_error([&] { model_->prefill(long_prompt, logits.data()); }, ErrorKind::bad_input,
               "max_position_embeddings");
  long_prompt.segments[0].ids.resize(2048);  // exactly the trained length fits
  EXPECT_NO_THROW(model_->prefill(long_prompt, logits.data()));
  expect_error([&] { model_->prefill(PromptInput{}, logits.data()); }, ErrorKind::bad_input,
               "empty");
  PromptInput outside;
  outside.segments.push_back({{2, 50272}, {}, 0});
  expect_error([&] { model_->prefill(outside, logits.data()); }, ErrorKind::bad_input, "50272");
  PromptInput ragged;
  ragged.segments.push_back({{}, std::vector<float>(7, 0.5f), 1});
  expect_error([&] { model_->prefill(ragged, logits.data()); }, ErrorKind::bad_input,
               "rows x 8");
}

// opt-350m's shape (post-LN, no final layer norm, project_in / project_out,
// a plain OPTForCausalLM folder) on a tiny folder; see tests/fixtures/opt/README.md.
TEST(OptPostLn, LogitsAndGreedyMatchTheReference) {
  const auto dir = fixture("opt/opt-tiny-post-ln");
  auto store = WeightStore::open_folder(dir);
  const OptConfig config = OptConfig::from_json(read_json(dir / "config.json"), "config.json");
  EXPECT_FALSE(config.do_layer_norm_before);
  EXPECT_FALSE(config.has_final_layer_norm());
  EXPECT_EQ(config.word_embed_proj_dim, 8);
  const OptModel model(*store, config, "", test::pool_ptr(), "opt-tiny-post-ln");
  EXPECT_EQ(model.hidden_size(), 8);  // prompt rows are embedding-wide
  const nlohmann::json expected = read_json(dir / "expected.json");

  PromptInput prompt;
  PromptSegment rows;
  rows.rows = expected["row_count"].get<size_t>();
  rows.embeddings = expected["rows"].get<std::vector<float>>();
  PromptSegment ids;
  ids.ids = ids32(expected["ids"]);
  prompt.context_ids = ids.ids;
  prompt.segments = {rows, ids};

  const std::vector<float> want = expected["prompt_logits"].get<std::vector<float>>();
  const std::vector<float> all = model.prompt_logits(prompt);
  EXPECT_LE(test::max_abs_diff(all, want), bar(want));
  const size_t vocab = static_cast<size_t>(model.vocab_size());
  std::vector<float> last(vocab);
  model.prefill(prompt, last.data());
  EXPECT_LE(test::max_abs_diff(last.data(), &want[want.size() - vocab], vocab), bar(want));

  GenerationRequest request;
  request.model = &model;
  request.prompt = prompt;
  request.config.max_new_tokens = 8;
  request.config.eos_token_ids = config.eos_token_ids;
  request.config.pad_token_id = config.pad_token_id;
  const GenerationResult greedy = generate(request);
  ASSERT_EQ(greedy.sequences.size(), 1u);
  EXPECT_EQ(greedy.sequences[0].tokens, ids32(expected["greedy_new_ids"]));
}

}  // namespace
}  // namespace mmfuse
