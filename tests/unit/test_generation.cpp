// generate(): parity with transformers 4.44 (expected outputs made by the real
// generate() / processors on the toy model: tests/fixtures/generation/), and
// the behaviour transformers has no counterpart for (max_positions, stop
// strings through our tokenizer, cancellation, our sampling RNG).
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "generate/beam_search.h"
#include "generate/generator.h"
#include "generate/logits_processors.h"
#include "generate/sampling_run.h"
#include "generation_test_doubles.h"
#include "io/generation_config.h"
#include "mmfuse/error.h"
#include "test_util.h"

namespace mmfuse {
namespace {

using test::ids_prompt;
using test::ToyLanguageModel;
using test::ToyTokenizer;

const nlohmann::json& hf() {
  static const nlohmann::json j = [] {
    std::ifstream in(test::fixture("generation/hf_generation.json"));
    return nlohmann::json::parse(in);
  }();
  return j;
}

GenerationRequest request_for(const ToyLanguageModel& model, std::vector<int32_t> prompt,
                              GenerationConfig config) {
  GenerationRequest r;
  r.model = &model;
  r.prompt = ids_prompt(std::move(prompt));
  r.config = std::move(config);
  return r;
}

constexpr float kInf = std::numeric_limits<float>::infinity();

// ---------- parity with transformers ----------

TEST(Generation, MatchesTransformersGenerateOnTheToyModel) {
  const auto& cases = hf()["generate"];
  ASSERT_GE(cases.size(), 100u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c["name"].get<std::string>());
    ToyLanguageModel model(c["vocab"].get<int>(), c["table_seed"].get<uint64_t>());
    GenerationConfig config;
    apply_generation_json(config, c["config"], "case");
    config.pad_token_id = c["pad_token_id"].get<int>();
    const GenerationResult result =
        generate(request_for(model, c["prompt"].get<std::vector<int32_t>>(), config));
    const auto& expected = c["sequences"];
    ASSERT_EQ(result.sequences.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(result.sequences[i].tokens, expected[i].get<std::vector<int32_t>>())
          << "sequence " << i;
      if (!c["scores"].is_null()) {
        EXPECT_NEAR(result.sequences[i].score, c["scores"][i].get<double>(), 2e-6)
            << "sequence " << i;
      }
    }
    EXPECT_EQ(model.prefills.load(), 1u);
    if (model.decodes.load() > 0) {
      EXPECT_EQ(model.widest_batch.load(), static_cast<size_t>(config.num_beams));
    }
  }
}

TEST(LogitsProcessors, MatchTransformersOnFixedRows) {
  const auto& rows = hf()["rows"];
  for (const auto& c : hf()["processors"]) {
    const std::string name = c["name"];
    SCOPED_TRACE(name + " row " + std::to_string(c["row"].get<int>()));
    std::vector<float> row = rows[c["row"].get<size_t>()].get<std::vector<float>>();
    const auto ids = c["ids"].get<std::vector<int32_t>>();
    std::istringstream words(name);
    std::string kind;
    double a = 0, b = 0;
    words >> kind >> a >> b;
    const std::vector<int32_t> eos37 = {3, 7}, eos5 = {5};
    if (kind == "repetition")
      apply_repetition_penalty(ids, static_cast<float>(a), row.data(), row.size());
    else if (kind == "ngram")
      apply_no_repeat_ngram(ids, static_cast<int>(a), row.data(), row.size());
    else if (kind == "minlen")
      apply_min_length(ids.size(), static_cast<size_t>(a), eos37, row.data(), row.size());
    else if (kind == "minnew")
      apply_min_new_tokens(ids.size(), static_cast<size_t>(a), static_cast<size_t>(b), eos5,
                           row.data(), row.size());
    else if (kind == "temperature")
      apply_temperature(static_cast<float>(a), row.data(), row.size());
    else if (kind == "top_k")
      apply_top_k(static_cast<int>(a), static_cast<int>(b), row.data(), row.size());
    else if (kind == "top_p")
      apply_top_p(static_cast<float>(a), static_cast<int>(b), row.data(), row.size());
    else if (kind == "min_p")
      apply_min_p(static_cast<float>(a), static_cast<int>(b), row.data(), row.size());
    else
      FAIL() << "unknown case";
    const auto& out = c["out"];
    ASSERT_EQ(out.size(), row.size());
    for (size_t i = 0; i < row.size(); ++i) {
      if (out[i].is_null()) {
        EXPECT_EQ(row[i], -kInf) << "index " << i;
      } else {
        EXPECT_EQ(row[i], out[i].get<float>()) << "index " << i;
      }
    }
  }
}

TEST(BeamHypotheses, MatchTransformersAddAndIsDone) {
  for (const auto& c : hf()["hypotheses"]) {
    const auto& es = c["early_stopping"];
    const EarlyStopping early = es.is_string()   ? EarlyStopping::never
                                : es.get<bool>() ? EarlyStopping::always
                                                 : EarlyStopping::heuristic;
    BeamHypotheses hyps(3, c["length_penalty"].get<double>(), early, 20);
    const std::pair<double, size_t> adds[] = {{-3.0, 4}, {-2.5, 3}, {-4.0, 6}, {-1.0, 2},
                                              {-2.5, 3}, {-6.0, 9}, {-2.0, 5}};
    for (size_t i = 0; i < 7; ++i) {
      SCOPED_TRACE("lp " + c["length_penalty"].dump() + " es " + es.dump() + " add " +
                   std::to_string(i));
      hyps.add({static_cast<int32_t>(i)}, adds[i].first, adds[i].second, FinishReason::stop);
      const auto& log = c["log"][i];
      EXPECT_DOUBLE_EQ(hyps.worst_score(), log["worst"].get<double>());
      std::vector<int32_t> kept;
      for (const auto& h : hyps.beams()) kept.push_back(h.ids[0]);
      std::sort(kept.begin(), kept.end());
      EXPECT_EQ(kept, log["kept"].get<std::vector<int32_t>>());
      const std::pair<double, size_t> probes[] = {{-1.0, 5}, {-3.0, 8}, {-0.2, 3}};
      for (size_t p = 0; p < 3; ++p)
        EXPECT_EQ(hyps.is_done(probes[p].first, probes[p].second, 2), log["done"][p].get<bool>())
            << "probe " << p;
    }
  }
}

// ---------- processors by hand ----------

TEST(LogitsProcessors, HandComputedArithmeticAndTies) {
  // Repetition: negative scores are multiplied, positive divided, each id once.
  std::vector<float> s = {2.0f, -1.0f, 0.5f, 3.0f};
  apply_repetition_penalty(std::vector<int32_t>{1, 2, 2, 1}, 2.0f, s.data(), s.size());
  EXPECT_EQ(s, (std::vector<float>{2.0f, -2.0f, 0.25f, 3.0f}));
  // top_k keeps every score tied with the k-th.
  s = {1.0f, 3.0f, 2.0f, 2.0f, 0.0f};
  apply_top_k(2, 1, s.data(), s.size());
  EXPECT_EQ(s, (std::vector<float>{-kInf, 3.0f, 2.0f, 2.0f, -kInf}));
  // top_p: probs (ascending) 0.1 0.2 0.3 0.4; top_p 0.7 removes cumsum <= 0.3: 0.1, 0.1+0.2.
  s = {std::log(0.4f), std::log(0.1f), std::log(0.3f), std::log(0.2f)};
  apply_top_p(0.7f, 1, s.data(), s.size());
  EXPECT_EQ(s[1], -kInf);
  EXPECT_EQ(s[3], -kInf);
  EXPECT_NE(s[0], -kInf);
  EXPECT_NE(s[2], -kInf);
  // min_p 0.6: probs 0.4 0.1 0.3 0.2 -> remove those below 0.24 (0.1 and 0.2).
  s = {std::log(0.4f), std::log(0.1f), std::log(0.3f), std::log(0.2f)};
  apply_min_p(0.6f, 1, s.data(), s.size());
  EXPECT_EQ(s[1], -kInf);
  EXPECT_EQ(s[3], -kInf);
  EXPECT_NE(s[2], -kInf);
  // ... but min_tokens_to_keep 3 keeps the three most likely.
  s = {std::log(0.4f), std::log(0.1f), std::log(0.3f), std::log(0.2f)};
  apply_min_p(0.6f, 3, s.data(), s.size());
  EXPECT_EQ(s[1], -kInf);
  EXPECT_NE(s[3], -kInf);
  // Greedy: the first index of the maximum.
  const float tie[] = {1.0f, 5.0f, 5.0f, 2.0f};
  EXPECT_EQ(argmax_index(tie, 4), 1u);
  // 1 - top_p in HF is a double rounded to float32: 1 - 0.9 keeps a probability of exactly 0.1f...
  // removed.
  EXPECT_EQ(decimal_double(0.9f), 0.9);
  EXPECT_EQ(decimal_double(0.6f), 0.6);
}

TEST(LogitsProcessors, OrderIsTransformersOrder) {
  GenerationConfig c;
  c.repetition_penalty = 1.2f;
  c.no_repeat_ngram_size = 3;
  c.min_length = 4;
  c.min_new_tokens = 2;
  c.do_sample = true;
  c.temperature = 0.7f;
  c.top_k = 10;
  c.top_p = 0.9f;
  c.min_p = 0.05f;
  LogitsProcessorList list(c, {2}, 5);
  EXPECT_EQ(
      list.processor_names(),
      (std::vector<std::string>{"RepetitionPenaltyLogitsProcessor", "NoRepeatNGramLogitsProcessor",
                                "MinLengthLogitsProcessor", "MinNewTokensLengthLogitsProcessor"}));
  EXPECT_EQ(list.warper_names(),
            (std::vector<std::string>{"TemperatureLogitsWarper", "TopKLogitsWarper",
                                      "TopPLogitsWarper", "MinPLogitsWarper"}));
  // No eos: the min-length processors are not built; greedy: no warpers; defaults: top_k 50 only.
  c.do_sample = false;
  EXPECT_EQ(LogitsProcessorList(c, {}, 5).processor_names().size(), 2u);
  EXPECT_TRUE(LogitsProcessorList(c, {2}, 5).warper_names().empty());
  GenerationConfig d;
  d.do_sample = true;
  EXPECT_EQ(LogitsProcessorList(d, {2}, 5).warper_names(),
            (std::vector<std::string>{"TopKLogitsWarper"}));
}

TEST(LogitsProcessors, MinTokensToKeepIsTwoForBeamSampling) {
  GenerationConfig c;
  c.do_sample = true;
  c.top_k = 1;
  c.num_beams = 3;
  std::vector<float> s = {0.0f, 3.0f, 1.0f, 2.0f};
  LogitsProcessorList({c}, {}, 1).warp(s.data(), s.size());  // no eos: keep 2
  EXPECT_EQ(s, (std::vector<float>{-kInf, 3.0f, -kInf, 2.0f}));
  s = {0.0f, 3.0f, 1.0f, 2.0f};
  LogitsProcessorList(c, {0, 1}, 1).warp(s.data(), s.size());  // two eos ids: keep 3
  EXPECT_EQ(s, (std::vector<float>{-kInf, 3.0f, 1.0f, 2.0f}));
}

// ---------- generation_config.json ----------

TEST(GenerationConfig, LoadsOverClassDefaults) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("mmfuse_gencfg_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  EXPECT_EQ(load_generation_config(dir).max_length, 20);  // no file: defaults
  {
    std::ofstream out(dir / "generation_config.json");
    out << R"({"eos_token_id": [2, 32000], "early_stopping": "never", "max_new_tokens": 7, "top_p": null,
              "temperature": 0.6, "do_sample": true, "transformers_version": "4.44.0", "bos_token_id": 1})";
  }
  GenerationConfig c = load_generation_config(dir);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int32_t>{2, 32000}));
  EXPECT_EQ(c.early_stopping, EarlyStopping::never);
  EXPECT_EQ(c.max_new_tokens, 7);
  EXPECT_EQ(c.top_p, 1.0f);
  EXPECT_EQ(c.temperature, 0.6f);
  EXPECT_TRUE(c.do_sample);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.top_k, 50);
  apply_generation_json(c, {{"eos_token_id", 5}, {"early_stopping", false}}, "request");
  EXPECT_EQ(c.eos_token_ids, (std::vector<int32_t>{5}));
  EXPECT_EQ(c.early_stopping, EarlyStopping::heuristic);
  {
    std::ofstream out(dir / "generation_config.json");
    out << R"({"num_beams": "four"})";
  }
  try {
    load_generation_config(dir);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    EXPECT_NE(std::string(e.what()).find("num_beams"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("generation_config.json"), std::string::npos);
  }
  EXPECT_THROW(apply_generation_json(c, {{"early_stopping", "sometimes"}}, "r"), Error);
  EXPECT_THROW(apply_generation_json(c, {{"max_new_tokens", 2.5}}, "r"), Error);
  std::filesystem::remove_all(dir);
}

TEST(GenerationConfig, ValidateNamesTheField) {
  auto rejects = [](auto change, const std::string& field) {
    GenerationConfig c;
    change(c);
    try {
      validate(c);
      ADD_FAILURE() << field << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::bad_input);
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  rejects([](GenerationConfig& c) { c.num_beams = 0; }, "num_beams");
  rejects([](GenerationConfig& c) { c.max_new_tokens = 0; }, "max_new_tokens");
  rejects([](GenerationConfig& c) { c.num_return_sequences = 2; }, "num_return_sequences");
  rejects([](GenerationConfig& c) { c.num_beams = 2, c.num_return_sequences = 3; },
          "num_return_sequences");
  rejects([](GenerationConfig& c) { c.do_sample = true, c.temperature = 0.0f; }, "temperature");
  rejects([](GenerationConfig& c) { c.do_sample = true, c.top_p = -0.1f; }, "top_p");
  rejects([](GenerationConfig& c) { c.do_sample = true, c.top_k = -1; }, "top_k");
  rejects([](GenerationConfig& c) { c.do_sample = true, c.min_p = 1.5f; }, "min_p");
  rejects([](GenerationConfig& c) { c.repetition_penalty = 0.0f; }, "repetition_penalty");
  rejects([](GenerationConfig& c) { c.min_new_tokens = -1; }, "min_new_tokens");
  rejects([](GenerationConfig& c) { c.stop_strings = {""}; }, "stop_strings");
  GenerationConfig fine;
  fine.temperature = 0.0f;  // not sampling: HF only warns
  EXPECT_NO_THROW(validate(fine));
}

// ---------- our own behaviour ----------

TEST(Generation, SamplingIsDeterministicPerSeed) {
  ToyLanguageModel model(12, 4);
  GenerationConfig c;
  c.do_sample = true;
  c.max_new_tokens = 16;
  c.temperature = 1.5f;
  c.eos_token_ids = {3};
  std::set<std::vector<int32_t>> distinct;
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    c.seed = seed;
    const auto a = generate(request_for(model, {1, 2}, c));
    const auto b = generate(request_for(model, {1, 2}, c));
    EXPECT_EQ(a.sequences[0].tokens, b.sequences[0].tokens);
    distinct.insert(a.sequences[0].tokens);
  }
  EXPECT_GE(distinct.size(), 4u);
  // top_k 1 sampling is greedy.
  c.top_k = 1;
  GenerationConfig greedy;
  greedy.max_new_tokens = 16;
  greedy.eos_token_ids = {3};
  EXPECT_EQ(generate(request_for(model, {1, 2}, c)).sequences[0].tokens,
            generate(request_for(model, {1, 2}, greedy)).sequences[0].tokens);
}

TEST(Generation, SamplingReturnsSeveralSequencesFromOneBatchedCall) {
  ToyLanguageModel model(12, 5);
  GenerationConfig c;
  c.do_sample = true;
  c.seed = 9;
  c.max_new_tokens = 10;
  c.num_return_sequences = 4;
  const auto r = generate(request_for(model, {1}, c));
  ASSERT_EQ(r.sequences.size(), 4u);
  EXPECT_EQ(model.prefills.load(), 1u);
  EXPECT_EQ(model.widest_batch.load(), 4u);
  for (const auto& s : r.sequences) {
    EXPECT_EQ(s.tokens.size(), 10u);
    EXPECT_EQ(s.finish_reason, FinishReason::length);
    EXPECT_LT(s.score, 0.0);
  }
}

TEST(Generation, StopsOnEosAndReportsFinishReasons) {
  ToyLanguageModel model(12, 1);
  GenerationConfig c;
  c.max_new_tokens = 12;
  c.eos_token_ids = {3};
  const auto r = generate(request_for(model, {1, 5, 7}, c));  // HF: [8, 3]
  EXPECT_EQ(r.sequences[0].tokens, (std::vector<int32_t>{8, 3}));
  EXPECT_EQ(r.sequences[0].finish_reason, FinishReason::stop);
  EXPECT_EQ(r.prompt_positions, 3u);
  c.eos_token_ids.clear();
  const auto r2 = generate(request_for(model, {1, 5, 7}, c));
  EXPECT_EQ(r2.sequences[0].tokens.size(), 12u);
  EXPECT_EQ(r2.sequences[0].finish_reason, FinishReason::length);
}

TEST(Generation, StopStringsEndTheSequence) {
  // Pieces: 0..2 special, then letters and fragments.
  ToyTokenizer tokenizer({"<pad>", "<s>", "</s>", "a", "b", "st", "op", "x", "o", "p", "s", "t"});
  ToyLanguageModel model(12, 7);
  GenerationConfig c;
  c.max_new_tokens = 30;
  const auto plain = generate(request_for(model, {4}, c)).sequences[0].tokens;
  // Choose a stop string that is the text of tokens 3..4 of the plain output
  // (it may also occur earlier, then the stop comes there).
  const std::string text = tokenizer.decode(plain, false);
  const std::string stop = tokenizer.decode({plain[3], plain[4]}, false);
  c.stop_strings = {stop};
  auto request = request_for(model, {4}, c);
  request.tokenizer = &tokenizer;
  const auto r = generate(request);
  const auto& got = r.sequences[0];
  EXPECT_EQ(got.finish_reason, FinishReason::stop);
  ASSERT_LE(got.tokens.size(), 5u);
  EXPECT_TRUE(std::equal(got.tokens.begin(), got.tokens.end(), plain.begin()));
  const std::string got_text = tokenizer.decode(got.tokens, false);
  EXPECT_NE(got_text.find(stop), std::string::npos);
  // The text before the last token does not hold it yet.
  EXPECT_EQ(tokenizer.decode({got.tokens.begin(), got.tokens.end() - 1}, false).find(stop),
            std::string::npos);
  // Without a tokenizer stop strings are refused.
  EXPECT_THROW(generate(request_for(model, {4}, c)), Error);
}

TEST(StopStringMatcher, MatchesAcrossTokensOnlyWhenReachingTheLastOne) {
  ToyTokenizer tokenizer(
      {"<pad>", "<s>", "</s>", "s", "to", "pped", "las", "topper", "stop", "at"});
  StopStringMatcher m(&tokenizer, {"stop"});
  auto ids = [&](std::vector<std::string> pieces) {
    std::vector<int32_t> out;
    for (const auto& p : pieces) out.push_back(tokenizer.token_to_id(p));
    return out;
  };
  EXPECT_TRUE(m.matches(ids({"s", "to", "pped"})));
  EXPECT_TRUE(m.matches(ids({"las", "topper"})));
  EXPECT_TRUE(m.matches(ids({"stop"})));
  EXPECT_FALSE(m.matches(ids({"stop", "at"})));
  EXPECT_FALSE(m.matches(ids({"s", "to"})));
}

TEST(Generation, MaxPositionsBoundsPromptAndNewTokens) {
  ToyLanguageModel model(12, 2, /*max_positions=*/8);
  GenerationConfig c;
  c.max_new_tokens = 20;
  const auto r = generate(request_for(model, {1, 2, 4}, c));
  EXPECT_EQ(r.sequences[0].tokens.size(), 5u);  // 3 + 5 = 8 positions
  EXPECT_EQ(r.sequences[0].finish_reason, FinishReason::length);
  c.num_beams = 2;
  const auto beams = generate(request_for(model, {1, 2, 4}, c));
  for (const auto& s : beams.sequences) EXPECT_LE(s.tokens.size(), 5u);
  c.num_beams = 1;
  try {
    generate(request_for(model, {1, 2, 4, 5, 6, 7, 8, 9}, c));
    FAIL() << "a prompt that fills max_positions was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
  }
}

TEST(Generation, InputLongerThanMaxLengthIsBadInput) {
  ToyLanguageModel model(12, 2);
  GenerationConfig c;
  c.max_length = 3;
  EXPECT_THROW(generate(request_for(model, {1, 2, 4}, c)), Error);
}

TEST(Generation, CancelFlagAndOnTokenStop) {
  ToyLanguageModel model(12, 3);
  GenerationConfig c;
  c.max_new_tokens = 20;
  auto request = request_for(model, {1}, c);
  std::vector<int32_t> seen;
  request.on_token = [&](int32_t t) {
    seen.push_back(t);
    return seen.size() < 4;
  };
  const auto r = generate(request);
  EXPECT_EQ(r.sequences[0].tokens.size(), 4u);
  EXPECT_EQ(r.sequences[0].tokens, seen);
  EXPECT_EQ(r.sequences[0].finish_reason, FinishReason::cancelled);

  std::atomic<bool> cancel{false};
  auto request2 = request_for(model, {1}, c);
  request2.cancel = &cancel;
  request2.on_token = [&](int32_t) {
    cancel = true;  // seen between steps: this token is the last
    return true;
  };
  const auto r2 = generate(request2);
  EXPECT_EQ(r2.sequences[0].tokens.size(), 1u);
  EXPECT_EQ(r2.sequences[0].finish_reason, FinishReason::cancelled);
}

// Greedy by hand on the toy encoder-decoder model: the processors see the
// decoder ids [start, new...], not the encoder prompt.
std::vector<int32_t> reference_encoder_decoder_greedy(uint64_t seed, int vocab,
                                                      const std::vector<int32_t>& encoder,
                                                      int32_t start, float penalty,
                                                      size_t new_tokens) {
  uint64_t key = 0;
  for (int32_t id : encoder) key = key * 31 + static_cast<uint64_t>(id) + 1;
  const uint64_t s = seed ^ test::splitmix64(key);
  std::vector<int32_t> ids = {start};
  std::vector<float> row(static_cast<size_t>(vocab));
  while (ids.size() < new_tokens + 1) {
    for (int v = 0; v < vocab; ++v)
      row[static_cast<size_t>(v)] =
          test::toy_logit(s, ids.back(), static_cast<int64_t>(ids.size()), v);
    apply_repetition_penalty(ids, penalty, row.data(), row.size());
    ids.push_back(static_cast<int32_t>(argmax_index(row.data(), row.size())));
  }
  return {ids.begin() + 1, ids.end()};
}

TEST(Generation, EncoderDecoderCountsDecoderTokens) {
  ToyLanguageModel model(12, 11, 64, /*decoder_start=*/0);
  GenerationConfig c;
  c.max_length = 6;  // start token + 5 new tokens
  c.repetition_penalty = 3.0f;
  const std::vector<int32_t> encoder = {5, 6, 7, 8, 9, 10, 11, 4, 4, 4};
  const auto r = generate(request_for(model, encoder, c));
  EXPECT_EQ(r.sequences[0].tokens, reference_encoder_decoder_greedy(11, 12, encoder, 0, 3.0f, 5));
  EXPECT_EQ(r.prompt_positions, encoder.size());
  // A long encoder input does not count against max_length.
  c.max_length = 3;
  EXPECT_EQ(generate(request_for(model, encoder, c)).sequences[0].tokens.size(), 2u);
  // Beam search runs on it too, one batched decode per step.
  c.num_beams = 3;
  c.max_length = 8;
  c.num_return_sequences = 3;
  const auto beams = generate(request_for(model, encoder, c));
  EXPECT_EQ(beams.sequences.size(), 3u);
  EXPECT_GE(beams.sequences[0].score, beams.sequences[1].score);
  EXPECT_GE(beams.sequences[1].score, beams.sequences[2].score);
}

TEST(Generation, EmbeddingSegmentsCountAsPositionsNotAsInputIds) {
  // LLaVA-like: context_ids hold one placeholder while the model sees 3 rows.
  ToyLanguageModel model(12, 2, 16);
  PromptInput prompt;
  prompt.segments.push_back({{1}, {}, 0});
  prompt.segments.push_back({{}, std::vector<float>(12, 0.004f), 3});
  prompt.context_ids = {1, 9};
  GenerationRequest request;
  request.model = &model;
  request.prompt = prompt;
  request.config.max_length = 6;  // 2 context ids + 4 new tokens
  const auto r = generate(request);
  EXPECT_EQ(r.prompt_positions, 4u);
  EXPECT_EQ(r.sequences[0].tokens.size(), 4u);
}

}  // namespace
}  // namespace mmfuse

namespace mmfuse {
namespace {

TEST(Generation, BeamSamplingIsDeterministicPerSeed) {
  test::ToyLanguageModel model(12, 6);
  GenerationRequest r;
  r.model = &model;
  r.prompt = test::ids_prompt({1, 2});
  r.config.num_beams = 3;
  r.config.num_return_sequences = 2;
  r.config.do_sample = true;
  r.config.max_new_tokens = 8;
  r.config.eos_token_ids = {3};
  r.config.seed = 42;
  const auto a = generate(r), b = generate(r);
  ASSERT_EQ(a.sequences.size(), 2u);
  for (size_t i = 0; i < 2; ++i) EXPECT_EQ(a.sequences[i].tokens, b.sequences[i].tokens);
  EXPECT_GE(a.sequences[0].score, a.sequences[1].score);
}

}  // namespace
}  // namespace mmfuse
