// The small shared helpers: UTC formatting, ASCII case, digests, include globs,
// and the MFCC front end called from many threads at once.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>
#include <vector>

#include "audio/mel_features.h"
#include "core/strings.h"
#include "core/utc_time.h"
#include "io/digest.h"
#include "io/hub_pull.h"

namespace mmfuse {
namespace {

TEST(UtcTime, FormatsMillisecondsSecondsAndDays) {
  EXPECT_EQ(iso8601_utc(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(iso8601_utc(1'700'000'000'123), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(iso8601_utc_seconds(1'700'000'000'999), "2023-11-14T22:13:20Z");
  EXPECT_EQ(utc_day(1'700'000'000'123), "2023-11-14");
  // Floor division before 1970.
  EXPECT_EQ(iso8601_utc(-1), "1969-12-31T23:59:59.999Z");
  const UtcTime u = utc_time(-1);
  EXPECT_EQ(u.year, 1969);
  EXPECT_EQ(u.millisecond, 999);
}

TEST(AsciiCase, MapsOnlyAsciiLetters) {
  EXPECT_EQ(ascii_lower("Temp_C.PNG"), "temp_c.png");
  EXPECT_EQ(ascii_upper("abc-Z"), "ABC-Z");
  EXPECT_EQ(ascii_lower("\xC3\x84"), "\xC3\x84");  // UTF-8 bytes unchanged
}

TEST(Digest, KnownVectors) {
  EXPECT_EQ(sha256_hex("abc", 3),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Digest d = Digest::sha1();
  d.update("abc", 3);
  EXPECT_EQ(d.hex(), "a9993e364706816aba3e25717850c26c9cd0d89d");
}

TEST(HubGlob, FnmatchWithoutPathname) {
  using hub::glob_match;
  EXPECT_TRUE(glob_match("*.json", "config.json"));
  EXPECT_TRUE(glob_match("*.json", "sub/config.json"));  // '*' crosses '/'
  EXPECT_TRUE(glob_match("model-?.safetensors", "model-1.safetensors"));
  EXPECT_FALSE(glob_match("model-?.safetensors", "model-12.safetensors"));
  EXPECT_TRUE(glob_match("model-[0-9].bin", "model-3.bin"));
  EXPECT_FALSE(glob_match("model-[!0-9].bin", "model-3.bin"));
  EXPECT_TRUE(glob_match("onnx/", "onnx/model.onnx"));  // a folder: everything below it
  EXPECT_FALSE(glob_match("onnx/", "onnx"));
  EXPECT_TRUE(glob_match("a[b", "a[b"));    // an unclosed '[' is literal
  EXPECT_TRUE(glob_match("a\\b", "a\\b"));  // backslash is an ordinary character
  EXPECT_TRUE(glob_match(".*", ".gitattributes"));
}

TEST(MelExtractor, ConcurrentCallsMatchSequential) {
  FeatureConfig config;
  std::vector<float> clip(16000);
  for (size_t i = 0; i < clip.size(); ++i)
    clip[i] = 0.3f * std::sin(0.05f * static_cast<float>(i)) + 0.01f * static_cast<float>(i % 7);
  const std::vector<float> expected = MelExtractor(config).mfcc(clip);
  std::vector<std::vector<float>> got(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t)
    threads.emplace_back([&, t] {
      FeatureConfig c = config;
      c.n_fft = t % 2 == 0 ? 512 : 1024;  // plans of two sizes made concurrently
      MelExtractor own(c);
      EXPECT_FALSE(own.mfcc(clip).empty());
      got[t] = MelExtractor(config).mfcc(clip);
    });
  for (auto& th : threads) th.join();
  for (const auto& g : got) EXPECT_EQ(g, expected);
}

}  // namespace
}  // namespace mmfuse
