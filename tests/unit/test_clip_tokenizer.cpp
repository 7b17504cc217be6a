// CLIP tokenizer parity with Hugging Face CLIPTokenizer (slow, no ftfy), plus the
// shared BasicTokenizer / added-token helpers.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "mmfuse/error.h"
#include "text/clip_tokenizer.h"
#include "text/unicode_text.h"

namespace mmfuse {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path clip_fixture(const std::string& relative) {
  return fs::path(MMFUSE_FIXTURES) / "clip" / relative;
}

const ClipTokenizer& openai_tokenizer() {
  static const ClipTokenizer tok =
      ClipTokenizer::from_folder(clip_fixture("models/clip-tiny-quickgelu-p32"));
  return tok;
}

const ClipTokenizer& laion_tokenizer() {
  static const ClipTokenizer tok =
      ClipTokenizer::from_folder(clip_fixture("models/clip-tiny-gelu-p16"));
  return tok;
}

const json& expected_cases() {
  static const json cases = [] {
    std::ifstream in(clip_fixture("tokenizer_expected.json"));
    return json::parse(in).at("cases");
  }();
  return cases;
}

std::vector<std::string> all_texts() {
  std::vector<std::string> texts;
  for (const json& c : expected_cases()) texts.push_back(c.at("text").get<std::string>());
  return texts;
}

// A temporary folder removed at scope exit.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::temp_directory_path() /
           (name + "_" + std::to_string(reinterpret_cast<uintptr_t>(this)) + "_" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  void write(const std::string& name, const std::string& content) const {
    std::ofstream out(path / name, std::ios::binary);
    out << content;
  }
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

template <typename F>
std::string error_message(F&& f, ErrorKind* kind = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (kind) *kind = e.kind();
    return e.what();
  }
  return "<no mmfuse::Error thrown>";
}

// ---------------------------------------------------------------------------
// Reference parity

TEST(ClipTokenizer, LoadsSpecialTokens) {
  const ClipTokenizer& o = openai_tokenizer();
  EXPECT_EQ(o.vocab_size(), 49408u);
  EXPECT_EQ(o.bos_id(), 49406);
  EXPECT_EQ(o.eos_id(), 49407);
  EXPECT_EQ(o.pad_id(), 49407);
  const ClipTokenizer& l = laion_tokenizer();
  EXPECT_EQ(l.vocab_size(), 49408u);
  EXPECT_EQ(l.bos_id(), 49406);
  EXPECT_EQ(l.eos_id(), 49407);
  EXPECT_EQ(l.pad_id(), 0);  // pad_token "!"
}

TEST(ClipTokenizer, MatchesReferenceTokensAndIds) {
  const ClipTokenizer& tok = openai_tokenizer();
  ASSERT_EQ(expected_cases().size(), 61u);
  size_t passed = 0;
  for (const json& c : expected_cases()) {
    const std::string text = c.at("text").get<std::string>();
    const auto tokens = tok.tokenize(text);
    const auto ids = tok.encode(text);
    EXPECT_EQ(tokens, c.at("tokens").get<std::vector<std::string>>()) << "text: " << text;
    EXPECT_EQ(ids, c.at("ids").get<std::vector<int64_t>>()) << "text: " << text;
    if (tokens == c.at("tokens").get<std::vector<std::string>>() &&
        ids == c.at("ids").get<std::vector<int64_t>>())
      ++passed;
  }
  EXPECT_EQ(passed, 61u);
}

TEST(ClipTokenizer, MatchesReferencePaddedBatch) {
  const TokenBatch batch = openai_tokenizer().encode_batch(all_texts(), 77);
  ASSERT_EQ(batch.input_ids.size(), expected_cases().size());
  ASSERT_EQ(batch.attention_mask.size(), expected_cases().size());
  for (size_t i = 0; i < expected_cases().size(); ++i) {
    const json& c = expected_cases()[i];
    EXPECT_EQ(batch.input_ids[i], c.at("input_ids").get<std::vector<int64_t>>())
        << "text: " << c.at("text");
    EXPECT_EQ(batch.attention_mask[i], c.at("attention_mask").get<std::vector<int64_t>>())
        << "text: " << c.at("text");
  }
}

TEST(ClipTokenizer, MatchesReferenceLaionPad) {
  const TokenBatch batch = laion_tokenizer().encode_batch(all_texts(), 77);
  ASSERT_EQ(batch.input_ids.size(), expected_cases().size());
  for (size_t i = 0; i < expected_cases().size(); ++i) {
    const json& c = expected_cases()[i];
    EXPECT_EQ(batch.input_ids[i], c.at("input_ids_laion_pad").get<std::vector<int64_t>>())
        << "text: " << c.at("text");
    EXPECT_EQ(batch.attention_mask[i], c.at("attention_mask_laion_pad").get<std::vector<int64_t>>())
        << "text: " << c.at("text");
  }
}

TEST(ClipTokenizer, F16FolderHasTheSameTokenizer) {
  const ClipTokenizer tok =
      ClipTokenizer::from_folder(clip_fixture("models/clip-tiny-quickgelu-p32-f16"));
  for (const json& c : expected_cases())
    EXPECT_EQ(tok.encode(c.at("text").get<std::string>()), c.at("ids").get<std::vector<int64_t>>());
}

// ---------------------------------------------------------------------------
// Hand-checked cases

TEST(ClipTokenizer, EmptyString) {
  EXPECT_TRUE(openai_tokenizer().tokenize("").empty());
  EXPECT_EQ(openai_tokenizer().encode(""), (std::vector<int64_t>{49406, 49407}));
  EXPECT_EQ(laion_tokenizer().encode(""), (std::vector<int64_t>{49406, 49407}));
  EXPECT_EQ(openai_tokenizer().encode(" \t\n\u3000"), (std::vector<int64_t>{49406, 49407}));
}

TEST(ClipTokenizer, ExclamationMarksInBothFolders) {
  EXPECT_EQ(openai_tokenizer().encode("!!!"), (std::vector<int64_t>{49406, 995, 49407}));
  EXPECT_EQ(openai_tokenizer().tokenize("!!!"), (std::vector<std::string>{"!!!</w>"}));
  // LAION: "!" is the pad token, an added special token split out before BPE.
  EXPECT_EQ(laion_tokenizer().encode("!!!"), (std::vector<int64_t>{49406, 0, 0, 0, 49407}));
  EXPECT_EQ(laion_tokenizer().tokenize("!!!"), (std::vector<std::string>{"!", "!", "!"}));
  EXPECT_EQ(openai_tokenizer().encode("Hello, world!"),
            (std::vector<int64_t>{49406, 3306, 267, 1002, 256, 49407}));
  EXPECT_EQ(laion_tokenizer().encode("Hello, world!"),
            (std::vector<int64_t>{49406, 3306, 267, 1002, 0, 49407}));
}

// Expected ids from a line-by-line Python transcription of HF's code (Python
// 3.11, `regex`), which reproduces all 61 reference cases.
TEST(ClipTokenizer, HfEdgeCases) {
  const ClipTokenizer& o = openai_tokenizer();
  const ClipTokenizer& l = laion_tokenizer();
  // Added tokens are split before the clean-up; an uppercase one is not, and the
  // regex then sees "!<|" as one piece.
  EXPECT_EQ(o.encode("!<|ENDOFTEXT|>"),
            (std::vector<int64_t>{49406, 0, 27, 347, 40786, 4160, 91, 285, 49407}));
  EXPECT_EQ(l.encode("!<|ENDOFTEXT|>"), (std::vector<int64_t>{49406, 0, 49407, 49407}));
  EXPECT_EQ(o.encode("hello <|endoftext|> world"),
            (std::vector<int64_t>{49406, 3306, 49407, 1002, 49407}));
  EXPECT_EQ(o.encode("wow!! <|startoftext|>!"),
            (std::vector<int64_t>{49406, 2781, 748, 49406, 256, 49407}));
  EXPECT_EQ(l.encode("wow!! <|startoftext|>!"),
            (std::vector<int64_t>{49406, 2781, 0, 0, 49406, 0, 49407}));
  // IGNORECASE: 's matches U+017F LONG S, and so does the special-token literal.
  EXPECT_EQ(o.tokenize("it'\u017f ok"),
            (std::vector<std::string>{"it</w>", "'", "\u00c5", "\u00bf</w>", "ok</w>"}));
  EXPECT_EQ(o.encode("<|\u017ftartoftext|>"),
            (std::vector<int64_t>{49406, 27, 91, 129, 123, 2002, 6659, 18169, 91, 285, 49407}));
  // U+0345 matches no alternative of the regex under IGNORECASE.
  EXPECT_EQ(o.encode("a\u0345b"), (std::vector<int64_t>{49406, 320, 321, 49407}));
  // Final sigma (str.lower()).
  EXPECT_EQ(o.encode("\u03a3\u0391\u03a3 \u039f\u0394\u039f\u03a3"),
            (std::vector<int64_t>{49406, 139, 225, 138, 109, 139, 480, 138, 123, 138, 112, 138, 123,
                                  139, 480, 49407}));
  // U+1FA75 (Unicode 15.0) is unassigned for Python 3.11, so the clean-up drops it.
  EXPECT_EQ(o.encode("\U0001FA75"), (std::vector<int64_t>{49406, 49407}));
  EXPECT_EQ(o.encode("x\U0001FA75y"), (std::vector<int64_t>{49406, 11443, 49407}));
}

TEST(ClipTokenizer, InvalidUtf8IsIgnored) {
  const ClipTokenizer& tok = openai_tokenizer();
  const std::vector<int64_t> cafe = tok.encode("caf");
  const std::vector<int64_t> hello = tok.encode("hello");
  EXPECT_EQ(tok.encode("caf\xff\xfe"), cafe);
  EXPECT_EQ(tok.encode("hel\x80lo"), hello);
  EXPECT_EQ(tok.encode("hel\xc3lo"), hello);              // truncated 2-byte sequence
  EXPECT_EQ(tok.encode("hel\xc0\xaflo"), hello);          // overlong '/'
  EXPECT_EQ(tok.encode("hel\xed\xa0\x80lo"), hello);      // UTF-8-encoded surrogate
  EXPECT_EQ(tok.encode("hel\xf4\x90\x80\x80lo"), hello);  // above U+10FFFF
  EXPECT_EQ(tok.encode("caf\xe2\x82"), cafe);             // truncated at the end
  EXPECT_EQ(tok.encode(std::string("a\0b", 3)), tok.encode("ab"));
  std::string junk;
  for (int i = 0; i < 4096; ++i) junk.push_back(static_cast<char>((i * 7919) & 0xFF));
  EXPECT_NO_THROW(tok.encode(junk));
  EXPECT_NO_THROW(laion_tokenizer().encode(junk));
}

TEST(ClipTokenizer, TruncatesAndPads) {
  const ClipTokenizer& tok = openai_tokenizer();
  const std::string long_text = "one two three four five six seven eight nine ten eleven";
  const std::vector<int64_t> full = tok.encode(long_text);
  ASSERT_EQ(full.size(), 13u);
  const TokenBatch b = tok.encode_batch({long_text, "a", ""}, 10);
  ASSERT_EQ(b.input_ids.size(), 3u);
  std::vector<int64_t> expected(full.begin(), full.begin() + 9);
  expected.push_back(49407);
  EXPECT_EQ(b.input_ids[0], expected);
  EXPECT_EQ(b.attention_mask[0], std::vector<int64_t>(10, 1));
  EXPECT_EQ(b.input_ids[1], (std::vector<int64_t>{49406, 320, 49407, 49407, 49407, 49407, 49407,
                                                  49407, 49407, 49407}));
  EXPECT_EQ(b.attention_mask[1], (std::vector<int64_t>{1, 1, 1, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(b.input_ids[2].size(), 10u);
  // max_length 2 keeps only bos/eos.
  EXPECT_EQ(tok.encode_batch({long_text}, 2).input_ids[0], (std::vector<int64_t>{49406, 49407}));
  EXPECT_THROW(tok.encode_batch({long_text}, 1), Error);
  EXPECT_TRUE(tok.encode_batch({}, 77).input_ids.empty());
}

TEST(ClipTokenizer, ConcurrentUseIsConsistent) {
  const ClipTokenizer tok =
      ClipTokenizer::from_folder(clip_fixture("models/clip-tiny-quickgelu-p32"));
  const std::vector<std::string> texts = all_texts();
  std::vector<std::vector<int64_t>> serial;
  for (const auto& t : texts) serial.push_back(openai_tokenizer().encode(t));
  std::vector<int> failures(8, 0);
  std::vector<std::thread> threads;
  for (int w = 0; w < 8; ++w) {
    threads.emplace_back([&, w] {
      for (int rep = 0; rep < 10; ++rep)
        for (size_t i = 0; i < texts.size(); ++i) {
          const size_t k = (i + static_cast<size_t>(w) * 7) % texts.size();
          if (tok.encode(texts[k]) != serial[k]) ++failures[static_cast<size_t>(w)];
        }
    });
  }
  for (auto& t : threads) t.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

TEST(ClipTokenizer, TimingShortStrings) {
  const ClipTokenizer tok =
      ClipTokenizer::from_folder(clip_fixture("models/clip-tiny-quickgelu-p32"));
  std::vector<std::string> texts;
  for (int i = 0; i < 1000; ++i)
    texts.push_back("a photo of a " + std::to_string(i) + " cat number " +
                    std::to_string(i * 37 % 1000) + ", seen from the side!");
  const auto t0 = std::chrono::steady_clock::now();
  const TokenBatch b = tok.encode_batch(texts, 77);
  const auto t1 = std::chrono::steady_clock::now();
  const TokenBatch b2 = tok.encode_batch(texts, 77);  // warm BPE cache
  const auto t2 = std::chrono::steady_clock::now();
  EXPECT_EQ(b.input_ids, b2.input_ids);
  const double cold_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  const double warm_ms = std::chrono::duration<double, std::milli>(t2 - t1).count();
  std::cout << "[ timing ] 1000 short strings: " << cold_ms << " ms (fresh cache), " << warm_ms
            << " ms (warm cache)\n";
  EXPECT_LT(cold_ms, 5000.0);
}

// ---------------------------------------------------------------------------
// Files

TEST(ClipTokenizer, MissingVocabNamesTheFile) {
  TempDir dir("mmfuse_clip_tok_missing");
  dir.write("merges.txt", "#version: 0.2\na b\n");
  ErrorKind kind = ErrorKind::internal;
  const std::string msg = error_message([&] { (void)ClipTokenizer::from_folder(dir.path); }, &kind);
  EXPECT_NE(msg.find("vocab.json"), std::string::npos) << msg;
  EXPECT_EQ(kind, ErrorKind::not_found);
}

TEST(ClipTokenizer, MissingMergesNamesTheFile) {
  TempDir dir("mmfuse_clip_tok_nomerges");
  dir.write("vocab.json", R"({"a": 0, "b": 1})");
  const std::string msg = error_message([&] { (void)ClipTokenizer::from_folder(dir.path); });
  EXPECT_NE(msg.find("merges.txt"), std::string::npos) << msg;
}

TEST(ClipTokenizer, MalformedFilesNameTheFile) {
  {
    TempDir dir("mmfuse_clip_tok_badvocab");
    dir.write("vocab.json", "{\"a\": 0,");
    dir.write("merges.txt", "#version: 0.2\n");
    ErrorKind kind = ErrorKind::internal;
    const std::string msg =
        error_message([&] { (void)ClipTokenizer::from_folder(dir.path); }, &kind);
    EXPECT_NE(msg.find("vocab.json"), std::string::npos) << msg;
    EXPECT_EQ(kind, ErrorKind::bad_input);
  }
  {
    TempDir dir("mmfuse_clip_tok_badids");
    dir.write("vocab.json", R"({"a": "zero"})");
    dir.write("merges.txt", "#version: 0.2\n");
    const std::string msg = error_message([&] { (void)ClipTokenizer::from_folder(dir.path); });
    EXPECT_NE(msg.find("vocab.json"), std::string::npos) << msg;
  }
  {
    TempDir dir("mmfuse_clip_tok_badconfig");
    const fs::path src = clip_fixture("models/clip-tiny-gelu-p16");
    dir.write("vocab.json", read_file(src / "vocab.json"));
    dir.write("merges.txt", read_file(src / "merges.txt"));
    dir.write("tokenizer_config.json", "[1, 2");
    const std::string msg = error_message([&] { (void)ClipTokenizer::from_folder(dir.path); });
    EXPECT_NE(msg.find("tokenizer_config.json"), std::string::npos) << msg;
  }
}

// vocab.json is read with a SAX parser; the outcome must match json.load's
// dict: the last id of a repeated token counts, and a token whose id is not
// an integer is an error naming it (the first such in sorted order).
TEST(ClipTokenizer, VocabRepeatedTokensAndBadIds) {
  const std::string specials = R"("<|startoftext|>": 0, "<|endoftext|>": 1, )";
  {
    TempDir dir("mmfuse_clip_tok_repeated");
    dir.write("vocab.json", "{" + specials + R"("a</w>": 7, "b</w>": [1], "a</w>": 2, "b</w>": 3})");
    dir.write("merges.txt", "#version: 0.2\n");
    const ClipTokenizer tok = ClipTokenizer::from_folder(dir.path);
    EXPECT_EQ(tok.encode("a b"), (std::vector<int64_t>{0, 2, 3, 1}));
    EXPECT_EQ(tok.vocab_size(), 4u);
  }
  {
    TempDir dir("mmfuse_clip_tok_badids2");
    dir.write("vocab.json", "{" + specials + R"("z": "q", "y": {"k": 1}, "x": 1.5, "w": 4})");
    dir.write("merges.txt", "#version: 0.2\n");
    const std::string msg = error_message([&] { (void)ClipTokenizer::from_folder(dir.path); });
    EXPECT_NE(msg.find("vocab.json: the id of \"x\" is not an integer"), std::string::npos) << msg;
  }
  {
    TempDir dir("mmfuse_clip_tok_array");
    dir.write("vocab.json", R"([{"a": 1}, 2])");
    dir.write("merges.txt", "#version: 0.2\n");
    const std::string msg = error_message([&] { (void)ClipTokenizer::from_folder(dir.path); });
    EXPECT_NE(msg.find("expected a JSON object"), std::string::npos) << msg;
  }
  {
    // A syntax error is reported before an earlier id of the wrong type.
    TempDir dir("mmfuse_clip_tok_both");
    dir.write("vocab.json", "{" + specials + R"("a": "q", "b": })");
    dir.write("merges.txt", "#version: 0.2\n");
    const std::string msg = error_message([&] { (void)ClipTokenizer::from_folder(dir.path); });
    EXPECT_NE(msg.find("malformed JSON in"), std::string::npos) << msg;
  }
}

TEST(ClipTokenizer, AcceptsEscapedVocabAndNoConfig) {
  // Re-write vocab.json with \uXXXX escapes, and drop the config files: the
  // defaults are the OpenAI ones (pad = <|endoftext|>).
  TempDir dir("mmfuse_clip_tok_escaped");
  const fs::path src = clip_fixture("models/clip-tiny-gelu-p16");
  const json vocab = json::parse(read_file(src / "vocab.json"));
  const std::string escaped = vocab.dump(-1, ' ', /*ensure_ascii=*/true);
  ASSERT_NE(escaped.find("\\u"), std::string::npos);
  dir.write("vocab.json", escaped);
  dir.write("merges.txt", read_file(src / "merges.txt"));
  const ClipTokenizer tok = ClipTokenizer::from_folder(dir.path);
  EXPECT_EQ(tok.pad_id(), 49407);
  for (const json& c : expected_cases())
    EXPECT_EQ(tok.encode(c.at("text").get<std::string>()), c.at("ids").get<std::vector<int64_t>>())
        << c.at("text");
}

TEST(ClipTokenizer, AddedTokensFromConfig) {
  // A non-special added token beyond the vocab, with lstrip, and a legacy
  // special_tokens_map.json pad token.
  TempDir dir("mmfuse_clip_tok_added");
  const fs::path src = clip_fixture("models/clip-tiny-quickgelu-p32");
  dir.write("vocab.json", read_file(src / "vocab.json"));
  dir.write("merges.txt", read_file(src / "merges.txt"));
  dir.write("tokenizer_config.json", R"({
    "added_tokens_decoder": {
      "49406": {"content": "<|startoftext|>", "special": true},
      "49407": {"content": "<|endoftext|>", "special": true},
      "49408": {"content": "<thing>", "lstrip": true, "rstrip": false, "single_word": false,
                "normalized": false, "special": false}
    },
    "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
    "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"
  })");
  const ClipTokenizer tok = ClipTokenizer::from_folder(dir.path);
  EXPECT_EQ(tok.tokenize("a   <thing>b"), (std::vector<std::string>{"a</w>", "<thing>", "b</w>"}));
  EXPECT_EQ(tok.encode("a <thing>b"), (std::vector<int64_t>{49406, 320, 49408, 321, 49407}));
}

// ---------------------------------------------------------------------------
// Shared helpers (BasicTokenizer, added-token splitting)

std::vector<std::string> utf8_words(const std::vector<std::u32string>& words) {
  std::vector<std::string> out;
  for (const auto& w : words) out.push_back(text::encode_utf8(w));
  return out;
}

TEST(BasicTokenizer, BertAndClipOptions) {
  using V = std::vector<std::string>;
  const std::string s = "H\u00e9llo, World! \u00dcn\u00efc\u00f6d\u00e9 \u4e2d\u6587";
  // BERT defaults: lowercase + strip accents + split punctuation.
  EXPECT_EQ(text::basic_tokenize(s, true, std::nullopt, true, true),
            (V{"hello", ",", "world", "!", "unicode", "\u4e2d", "\u6587"}));
  EXPECT_EQ(
      text::basic_tokenize(s, false, std::nullopt, true, true),
      (V{"H\u00e9llo", ",", "World", "!", "\u00dcn\u00efc\u00f6d\u00e9", "\u4e2d", "\u6587"}));
  // CLIP: lowercase, keep accents, no punctuation split.
  EXPECT_EQ(text::basic_tokenize(s, true, false, false, true),
            (V{"h\u00e9llo,", "world!", "\u00fcn\u00efc\u00f6d\u00e9", "\u4e2d", "\u6587"}));
  EXPECT_EQ(text::basic_tokenize("\u0130stanbul \u039f\u0394\u039f\u03a3 caf\u00e9", true,
                                 std::nullopt, true, true),
            (V{"istanbul", "\u03bf\u03b4\u03bf\u03c2", "cafe"}));
  EXPECT_EQ(text::basic_tokenize("\u0130stanbul", true, false, false, true), (V{"i\u0307stanbul"}));
  EXPECT_EQ(text::basic_tokenize("\tA\u00a0B\u3000c\u2028d", true, std::nullopt, true, true),
            (V{"a", "b", "c", "d"}));
  text::BasicTokenizerOptions opts;
  opts.never_split = {U"[CLS]"};
  EXPECT_EQ(utf8_words(text::basic_tokenize(std::u32string(U"don't [CLS] x\u200by"), opts)),
            (V{"don", "'", "t", "[CLS]", "xy"}));
  opts.never_split.clear();
  EXPECT_EQ(utf8_words(text::basic_tokenize(std::u32string(U"don't [CLS] x\u200by"), opts)),
            (V{"don", "'", "t", "[", "cls", "]", "xy"}));
}

std::vector<std::pair<std::string, bool>> split_with(const std::vector<text::AddedToken>& tokens,
                                                     const std::string& s) {
  std::vector<std::pair<std::string, bool>> out;
  for (const auto& c : text::AddedTokenSplitter(tokens).split(text::decode_utf8(s)))
    out.emplace_back(text::encode_utf8(c.text), c.added >= 0);
  return out;
}

text::AddedToken added(const std::string& content, bool lstrip = false, bool rstrip = false,
                       bool single_word = false) {
  text::AddedToken t;
  t.content = content;
  t.lstrip = lstrip;
  t.rstrip = rstrip;
  t.single_word = single_word;
  return t;
}

TEST(AddedTokenSplitter, MatchesHfTrie) {
  using V = std::vector<std::pair<std::string, bool>>;
  // The docstring example of HF's Trie.split (longest match first).
  EXPECT_EQ(split_with({added("[CLS]"), added("extra_id_1"), added("extra_id_100")},
                       "[CLS] This is a extra_id_100"),
            (V{{"[CLS]", true}, {" This is a ", false}, {"extra_id_100", true}}));
  EXPECT_EQ(split_with({added("b"), added("abc")}, "xabcz"),
            (V{{"x", false}, {"abc", true}, {"z", false}}));
  // HF's lookahead quirk: "b" completes while the partial "ab" of "abc" is active,
  // and the lookahead resumes "ab" after the mismatching "y".
  EXPECT_EQ(split_with({added("b"), added("abc")}, "abyc"), (V{{"abyc", false}}));
  EXPECT_EQ(split_with({added("<mask>", true), added("[X]", false, true)}, "a <mask>  b [X]  c"),
            (V{{"a", false}, {"<mask>", true}, {"  b ", false}, {"[X]", true}, {"c", false}}));
  EXPECT_EQ(split_with({added("ab", false, false, true)}, "xab y ab z"),
            (V{{"xab", false}, {" y ", false}, {"ab", true}, {" z", false}}));
  EXPECT_EQ(split_with({}, "plain"), (V{{"plain", false}}));
  EXPECT_TRUE(split_with({added("x")}, "").empty());
}

}  // namespace
}  // namespace mmfuse
