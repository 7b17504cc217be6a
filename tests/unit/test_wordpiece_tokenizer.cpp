// WordPiece tokenizer parity with Hugging Face BertTokenizer (slow) on the
// reference strings of tests/fixtures/bert, plus the rules on small vocabularies.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "mmfuse/error.h"
#include "test_util.h"
#include "text/wordpiece_tokenizer.h"

namespace mmfuse {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::fixture;

const WordPieceTokenizer& bert_tokenizer() {
  static const WordPieceTokenizer tok =
      WordPieceTokenizer::from_folder(fixture("bert/models/bert-tiny-chinese"));
  return tok;
}

json read_json(const fs::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}

std::vector<std::vector<int64_t>> rows(const json& j) {
  return j.get<std::vector<std::vector<int64_t>>>();
}

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

TEST(WordPieceTokenizer, LoadsVocabAndSpecialTokens) {
  const WordPieceTokenizer& tok = bert_tokenizer();
  EXPECT_EQ(tok.vocab_size(), 21128u);
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.unk_id(), 100);
  EXPECT_EQ(tok.cls_id(), 101);
  EXPECT_EQ(tok.sep_id(), 102);
  EXPECT_TRUE(tok.options().do_lower_case);
  EXPECT_FALSE(tok.options().strip_accents.has_value());
}

TEST(WordPieceTokenizer, MatchesEveryReferenceString) {
  const json cases = read_json(fixture("bert/tokenizer_expected.json")).at("cases");
  ASSERT_GE(cases.size(), 36u);
  for (const json& c : cases) {
    const std::string text = c.at("text").get<std::string>();
    EXPECT_EQ(bert_tokenizer().tokenize(text), c.at("tokens").get<std::vector<std::string>>())
        << text;
    EXPECT_EQ(bert_tokenizer().encode(text), c.at("ids").get<std::vector<int64_t>>()) << text;
    TokenBatch b = bert_tokenizer().encode_batch({text}, 52);
    EXPECT_EQ(b.input_ids[0], c.at("input_ids").get<std::vector<int64_t>>()) << text;
    EXPECT_EQ(b.attention_mask[0], c.at("attention_mask").get<std::vector<int64_t>>()) << text;
    EXPECT_EQ(b.token_type_ids[0], c.at("token_type_ids").get<std::vector<int64_t>>()) << text;
  }
}

// Rows of a batch, flattened as the reference tensors store them.
std::vector<int64_t> flat(const std::vector<std::vector<int64_t>>& rows_in) {
  std::vector<int64_t> out;
  for (const auto& r : rows_in) out.insert(out.end(), r.begin(), r.end());
  return out;
}

TEST(WordPieceTokenizer, MatchesModelInputsAndPairs) {
  const json out = read_json(fixture("bert/outputs/bert-tiny-chinese/outputs.json"));
  test::Reference ref(fixture("bert/outputs/bert-tiny-chinese/outputs.safetensors"));
  TokenBatch b = bert_tokenizer().encode_batch(out.at("texts").get<std::vector<std::string>>(), 52);
  EXPECT_EQ(b.input_ids, rows(out.at("input_ids")));
  EXPECT_EQ(flat(b.input_ids), ref.i64("input_ids"));
  EXPECT_EQ(flat(b.attention_mask), ref.i64("attention_mask"));
  EXPECT_EQ(flat(b.token_type_ids), ref.i64("token_type_ids"));
  std::vector<std::string> first, second;
  for (const json& p : out.at("pairs")) {
    first.push_back(p.at(0).get<std::string>());
    second.push_back(p.at(1).get<std::string>());
  }
  TokenBatch pairs = bert_tokenizer().encode_pairs(first, second, 52);
  EXPECT_EQ(flat(pairs.input_ids), ref.i64("pair_input_ids"));
  EXPECT_EQ(flat(pairs.token_type_ids), ref.i64("pair_token_type_ids"));
  EXPECT_EQ(flat(pairs.attention_mask), ref.i64("pair_attention_mask"));
  // Chinese-CLIP uses the same tokenizer on its own texts.
  const json cc = read_json(fixture("chinese_clip/outputs/chinese-clip-tiny-p16/outputs.json"));
  test::Reference cref(fixture("chinese_clip/outputs/chinese-clip-tiny-p16/outputs.safetensors"));
  const WordPieceTokenizer ctok =
      WordPieceTokenizer::from_folder(fixture("chinese_clip/models/chinese-clip-tiny-p16"));
  TokenBatch cb = ctok.encode_batch(cc.at("texts").get<std::vector<std::string>>(), 52);
  EXPECT_EQ(flat(cb.input_ids), cref.i64("input_ids"));
  EXPECT_EQ(flat(cb.attention_mask), cref.i64("attention_mask"));
  EXPECT_EQ(flat(cb.token_type_ids), cref.i64("token_type_ids"));
}

// A small vocabulary to pin down each rule.
struct SmallVocab : TempDir {
  SmallVocab() : TempDir("mmfuse_wordpiece") {
    write("vocab.txt",
          "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nun\n##aff\n##able\nplay\n##ing\na\n##b\n,\n"
          "cafe\ncafé\n猫\n!\nσ\nς\n");
  }
};

TEST(WordPieceTokenizer, GreedyLongestMatchAndUnknown) {
  SmallVocab dir;
  const WordPieceTokenizer tok = WordPieceTokenizer::from_folder(dir.path);
  EXPECT_EQ(tok.tokenize("unaffable playing"),
            (std::vector<std::string>{"un", "##aff", "##able", "play", "##ing"}));
  // A word with an unmatched tail is [UNK] as a whole, not a partial match.
  EXPECT_EQ(tok.tokenize("unaffablex"), (std::vector<std::string>{"[UNK]"}));
  EXPECT_EQ(tok.tokenize("abbb"), (std::vector<std::string>{"a", "##b", "##b", "##b"}));
  // Punctuation splits words; CJK ideographs are single words.
  EXPECT_EQ(tok.tokenize("a,play猫!"), (std::vector<std::string>{"a", ",", "play", "猫", "!"}));
  EXPECT_EQ(tok.encode("a"), (std::vector<int64_t>{2, 10, 3}));
  // max_input_chars_per_word = 100: 100 characters are tokenized, 101 are [UNK].
  EXPECT_EQ(tok.tokenize("a" + std::string(99, 'b')).size(), 100u);
  EXPECT_EQ(tok.tokenize("a" + std::string(100, 'b')), (std::vector<std::string>{"[UNK]"}));
}

TEST(WordPieceTokenizer, LowercaseAccentsAndSpecialTokens) {
  SmallVocab dir;
  const WordPieceTokenizer tok = WordPieceTokenizer::from_folder(dir.path);
  // do_lower_case with strip_accents null strips accents; special tokens in the
  // text stay whole, lowercased ones do not.
  EXPECT_EQ(tok.tokenize("CAFÉ"), (std::vector<std::string>{"cafe"}));
  EXPECT_EQ(tok.tokenize("[CLS]a[MASK]"), (std::vector<std::string>{"[CLS]", "a", "[MASK]"}));
  EXPECT_EQ(tok.tokenize("[cls]"), (std::vector<std::string>{"[UNK]", "[UNK]", "[UNK]"}));
  // HF lowercases one character at a time, so a final capital sigma is σ, not ς.
  EXPECT_EQ(tok.tokenize("aΣ"), (std::vector<std::string>{"[UNK]"}));
  EXPECT_EQ(tok.tokenize("Σ"), (std::vector<std::string>{"σ"}));

  dir.write("tokenizer_config.json", R"({"do_lower_case": false, "strip_accents": false})");
  const WordPieceTokenizer cased = WordPieceTokenizer::from_folder(dir.path);
  EXPECT_EQ(cased.tokenize("café CAFE"), (std::vector<std::string>{"café", "[UNK]"}));
  dir.write("tokenizer_config.json", R"({"do_lower_case": false, "strip_accents": true})");
  EXPECT_EQ(WordPieceTokenizer::from_folder(dir.path).tokenize("café"),
            (std::vector<std::string>{"cafe"}));
  dir.write("tokenizer_config.json", R"({"do_lower_case": true, "strip_accents": false})");
  EXPECT_EQ(WordPieceTokenizer::from_folder(dir.path).tokenize("CAFÉ"),
            (std::vector<std::string>{"café"}));
  // Without the basic tokenizer HF neither lowercases nor splits punctuation.
  dir.write("tokenizer_config.json", R"({"do_basic_tokenize": false})");
  EXPECT_EQ(WordPieceTokenizer::from_folder(dir.path).tokenize("play PLAY a,"),
            (std::vector<std::string>{"play", "[UNK]", "[UNK]"}));
  dir.write("tokenizer_config.json", R"({"never_split": ["PLAY"], "do_lower_case": true})");
  EXPECT_EQ(WordPieceTokenizer::from_folder(dir.path).tokenize("PLAY"),
            (std::vector<std::string>{"play"}));
}

TEST(WordPieceTokenizer, TruncatesSinglesAndPairsLikeHf) {
  SmallVocab dir;
  const WordPieceTokenizer tok = WordPieceTokenizer::from_folder(dir.path);
  TokenBatch b = tok.encode_batch({"a a a a a", ""}, 5);
  EXPECT_EQ(b.input_ids[0], (std::vector<int64_t>{2, 10, 10, 10, 3}));
  EXPECT_EQ(b.input_ids[1], (std::vector<int64_t>{2, 3, 0, 0, 0}));
  EXPECT_EQ(b.attention_mask[1], (std::vector<int64_t>{1, 1, 0, 0, 0}));
  TokenBatch unpadded = tok.encode_batch({"a", "a a"}, 8, /*pad=*/false);
  EXPECT_EQ(unpadded.input_ids[0].size(), 3u);
  EXPECT_EQ(unpadded.input_ids[1].size(), 4u);
  // longest_first: 6 + 2 tokens into 7 = 4 + 3 specials: the longer loses 4.
  TokenBatch p = tok.encode_pairs({"a a a a a a"}, {"play play"}, 9);
  EXPECT_EQ(p.input_ids[0], (std::vector<int64_t>{2, 10, 10, 10, 10, 3, 8, 8, 3}));
  EXPECT_EQ(p.token_type_ids[0], (std::vector<int64_t>{0, 0, 0, 0, 0, 0, 1, 1, 1}));
  // Equal lengths share the cut; the second text loses the odd token.
  TokenBatch q = tok.encode_pairs({"a a a"}, {"play play play"}, 6);
  EXPECT_EQ(q.input_ids[0], (std::vector<int64_t>{2, 10, 10, 3, 8, 3}));
  const std::string msg = error_message([&] { (void)tok.encode_batch({"a a"}, 2); });
  EXPECT_NE(msg.find("max_length"), std::string::npos) << msg;
}

TEST(WordPieceTokenizer, VocabLinesAndErrors) {
  {
    TempDir dir("mmfuse_wordpiece_crlf");
    dir.write("vocab.txt", "[PAD]\r\n[UNK]\r\n[CLS]\r[SEP]\n[MASK]\nhello");
    const WordPieceTokenizer tok = WordPieceTokenizer::from_folder(dir.path);
    EXPECT_EQ(tok.encode("hello"), (std::vector<int64_t>{2, 5, 3}));
    EXPECT_EQ(tok.vocab_size(), 6u);
  }
  {
    TempDir dir("mmfuse_wordpiece_missing");
    ErrorKind kind = ErrorKind::internal;
    const std::string msg =
        error_message([&] { (void)WordPieceTokenizer::from_folder(dir.path); }, &kind);
    EXPECT_NE(msg.find("vocab.txt"), std::string::npos) << msg;
    EXPECT_EQ(kind, ErrorKind::not_found);
  }
  {
    TempDir dir("mmfuse_wordpiece_bad");
    dir.write("vocab.txt", "[PAD]\n\xff\xfe\n");
    ErrorKind kind = ErrorKind::internal;
    const std::string msg =
        error_message([&] { (void)WordPieceTokenizer::from_folder(dir.path); }, &kind);
    EXPECT_NE(msg.find("vocab.txt"), std::string::npos) << msg;
    EXPECT_EQ(kind, ErrorKind::bad_input);
    dir.write("vocab.txt", "");
    EXPECT_NE(error_message([&] { (void)WordPieceTokenizer::from_folder(dir.path); }).find("empty"),
              std::string::npos);
    dir.write("vocab.txt", "[UNK]\n[CLS]\n[SEP]\n[PAD]\n");
    dir.write("tokenizer_config.json", R"({"do_lower_case": "yes"})");
    EXPECT_NE(error_message([&] {
                (void)WordPieceTokenizer::from_folder(dir.path);
              }).find("do_lower_case"),
              std::string::npos);
  }
}

TEST(WordPieceTokenizer, InvalidUtf8AndControlCharactersAreDropped) {
  const WordPieceTokenizer& tok = bert_tokenizer();
  EXPECT_EQ(tok.encode("猫\xff\xfe猫\x01"), tok.encode("猫猫"));
  EXPECT_EQ(tok.encode(""), (std::vector<int64_t>{101, 102}));
}

TEST(WordPieceTokenizer, RandomBytesNeverBreakIt) {
  const WordPieceTokenizer& tok = bert_tokenizer();
  std::mt19937 rng(42);
  const std::string pieces[] = {"[CLS]", "[MASK]", "猫", "\xe4\xb8", "\xf0\x9f\x98\x80", "##", "é", "\r\n", "\x00"};
  for (int i = 0; i < 2000; ++i) {
    std::string text;
    const int n = static_cast<int>(rng() % 40);
    for (int k = 0; k < n; ++k) {
      if (rng() % 4 == 0) {
        text += pieces[rng() % std::size(pieces)];
      } else {
        text.push_back(static_cast<char>(rng() % 256));
      }
    }
    TokenBatch b = tok.encode_batch({text}, 32);
    ASSERT_EQ(b.input_ids[0].size(), 32u);
    for (int64_t id : b.input_ids[0]) ASSERT_TRUE(id >= 0 && id < 21128) << id;
    EXPECT_EQ(b.input_ids[0][0], 101);
  }
}

}  // namespace
}  // namespace mmfuse
