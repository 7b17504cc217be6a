// The packed-weight cache (io/packed_weight_cache.h): a second load maps the
// packed layers and computes byte-identical outputs; corrupt, truncated and
// stale files are rebuilt; a folder that cannot be written only costs the cache.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>

#include "core/packed_gemm.h"
#include "io/packed_cache_file.h"
#include "io/packed_weight_cache.h"
#include "mmfuse/error.h"
#include "mmfuse/thread_pool.h"
#include "models/clip.h"
#include "models/transformer.h"
#include "test_util.h"

namespace mmfuse {
namespace {

namespace fs = std::filesystem;
using test::fixture;

// A model folder copied to a fresh temp folder (so its mtime can change), and
// a cache folder beside it; MMFUSE_CACHE_DIR points there while it lives.
class CacheSandbox {
 public:
  CacheSandbox() {
    static int counter = 0;
    root_ = fs::temp_directory_path() /
            ("mmfuse-packcache-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::create_directories(root_ / "cache");
    fs::copy(fixture("clip/models/clip-tiny-gelu-p16"), root_ / "model");
    const char* old = std::getenv("MMFUSE_CACHE_DIR");
    had_old_ = old != nullptr;
    if (had_old_) old_ = old;
    ::setenv("MMFUSE_CACHE_DIR", cache().c_str(), 1);
  }
  ~CacheSandbox() {
    if (had_old_) {
      ::setenv("MMFUSE_CACHE_DIR", old_.c_str(), 1);
    } else {
      ::unsetenv("MMFUSE_CACHE_DIR");
    }
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  fs::path model() const { return root_ / "model"; }
  fs::path cache() const { return root_ / "cache"; }
  // The one cache file, or empty.
  fs::path cache_file() const {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(cache()))
      if (e.path().extension() == ".mmpack") files.push_back(e.path());
    EXPECT_LE(files.size(), 1u);
    return files.empty() ? fs::path() : files[0];
  }

 private:
  fs::path root_;
  std::string old_;
  bool had_old_ = false;
};

// Text and image features of a model, for byte comparisons.
std::vector<float> clip_outputs(const fs::path& dir, Precision precision) {
  auto model = ClipModel::load(dir, nullptr, precision);
  std::vector<float> out = model->text_features(std::vector<std::string>{"a photo of a cat", "x"});
  const size_t s = static_cast<size_t>(model->image_size());
  std::vector<float> pixels(2 * 3 * s * s);
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : pixels) v = normal(rng);
  std::vector<float> image = model->image_features(pixels.data(), 2);
  out.insert(out.end(), image.begin(), image.end());
  return out;
}

// Loads one encoder layer's q projection through a store with the cache on.
struct StoreLoad {
  std::shared_ptr<WeightStore> store;
  Linear linear;
};
StoreLoad load_q_proj(const fs::path& model, const fs::path& cache_dir, Precision precision) {
  StoreLoad l;
  l.store = WeightStore::open_folder(model);
  l.store->set_linear_precision(precision);
  PackedCacheSettings settings;
  settings.enabled = true;
  settings.dir = cache_dir;
  l.store->enable_packed_cache(settings);
  l.linear = load_linear(*l.store, "text_model.encoder.layers.0.self_attn.q_proj", 32, 32);
  l.store->save_packed_cache();
  return l;
}

std::string read_cache_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_cache_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

TEST(Hash64, SpreadsSmallChanges) {
  std::vector<uint8_t> a(1000, 1);
  const uint64_t h = hash64(a.data(), a.size());
  EXPECT_EQ(h, hash64(a.data(), a.size()));
  a[999] ^= 0x10;
  EXPECT_NE(h, hash64(a.data(), a.size()));
  EXPECT_NE(hash64(a.data(), 999), hash64(a.data(), 998));
  EXPECT_NE(hash64("", 0), hash64("\0", 1));
  // Fixed values (XXH3-64, seed 0): files written by one build must verify in another.
  std::vector<uint8_t> b(3000);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(i * 7 + 1);
  EXPECT_EQ(hash64(b.data(), b.size()), 0xaf446cc1736d393cull);
  EXPECT_EQ(hash64(b.data(), 13), 0xf2d44492d7afd263ull);
}

TEST(PackedCacheFile, RoundTripGivesIdenticalProducts) {
  CacheSandbox box;
  const int in = 96, out = 768, rows = 5;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(static_cast<size_t>(in) * out), x(static_cast<size_t>(rows) * in);
  for (float& v : w) v = normal(rng);
  for (float& v : x) v = normal(rng);
  for (Precision p : {Precision::f32, Precision::int8}) {
    SCOPED_TRACE(to_string(p));
    PackedLinear packed(w.data(), in, out, p);
    const fs::path file = box.cache() / "layer.mmpack";
    write_packed_cache(file, "key", {{"layer", &packed}});
    const std::string bytes = read_cache_bytes(file);
    const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
    PackedCacheIndex index = parse_packed_cache(data, bytes.size(), file.string());
    ASSERT_EQ(index.key, "key");
    ASSERT_EQ(index.layers.size(), 1u);
    const PackedCacheLayer& layer = index.layers[0];
    EXPECT_TRUE(packed_layer_intact(data, layer));
    PackedLinear::Stored stored;
    for (const auto& [offset, size] : layer.slices) stored.slices.push_back(data + offset);
    stored.scale = reinterpret_cast<const float*>(data + layer.scale);
    stored.sums = reinterpret_cast<const int32_t*>(data + layer.sums);
    auto loaded = PackedLinear::from_stored(in, out, p, stored);
    std::vector<float> y1(static_cast<size_t>(rows) * out), y2(y1.size());
    for (int s = 0; s < packed.slices(); ++s) {
      if (p == Precision::f32) {
        ASSERT_TRUE(packed.multiply(x.data(), rows, s, nullptr, y1.data(), out, false));
        ASSERT_TRUE(loaded->multiply(x.data(), rows, s, nullptr, y2.data(), out, false));
      } else {
        PackedLinear::Input input;
        packed.prepare_input(rows, input);
        packed.convert_rows(x.data(), 0, rows, input);
        packed.multiply_converted(input, s, nullptr, y1.data(), out, false);
        loaded->multiply_converted(input, s, nullptr, y2.data(), out, false);
      }
    }
    EXPECT_EQ(0, std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float)));
  }
}

TEST(PackedCacheFile, RejectsDamagedIndexes) {
  CacheSandbox box;
  std::vector<float> w(64 * 64, 0.5f);
  PackedLinear packed(w.data(), 64, 64, Precision::int8);
  const fs::path file = box.cache() / "layer.mmpack";
  write_packed_cache(file, "key", {{"layer", &packed}});
  const std::string bytes = read_cache_bytes(file);
  auto parse = [](const std::string& b) {
    return parse_packed_cache(reinterpret_cast<const uint8_t*>(b.data()), b.size(), "f");
  };
  EXPECT_NO_THROW(parse(bytes));
  std::string flipped = bytes;
  flipped[30] ^= 1;  // inside the index
  EXPECT_THROW(parse(flipped), Error);
  EXPECT_THROW(parse(bytes.substr(0, bytes.size() - 100)), Error);  // blobs past the end
  EXPECT_THROW(parse(bytes.substr(0, 20)), Error);
  EXPECT_THROW(parse("MMFPACK2" + bytes.substr(8)), Error);
  // A payload byte: the index parses, the layer's checksum fails.
  std::string payload = bytes;
  payload[bytes.size() - 300] ^= 1;
  PackedCacheIndex index = parse(payload);
  EXPECT_FALSE(packed_layer_intact(reinterpret_cast<const uint8_t*>(payload.data()),
                                   index.layers[0]));
}

TEST(PackedWeightCache, SecondLoadMapsLayersWithIdenticalOutputs) {
  CacheSandbox box;
  for (Precision p : {Precision::f32, Precision::int8}) {
    SCOPED_TRACE(to_string(p));
    ::setenv("MMFUSE_WEIGHT_CACHE", "0", 1);
    const std::vector<float> uncached = clip_outputs(box.model(), p);
    ::unsetenv("MMFUSE_WEIGHT_CACHE");
    EXPECT_TRUE(fs::is_empty(box.cache()));
    const std::vector<float> first = clip_outputs(box.model(), p);  // packs, writes the file
    const fs::path file = box.cache_file();
    ASSERT_FALSE(file.empty());
    const auto written = fs::last_write_time(file);
    const std::vector<float> second = clip_outputs(box.model(), p);  // maps it
    EXPECT_EQ(fs::last_write_time(file), written) << "a full hit must not rewrite the file";
    ASSERT_EQ(uncached.size(), second.size());
    EXPECT_EQ(0, std::memcmp(uncached.data(), first.data(), uncached.size() * sizeof(float)));
    EXPECT_EQ(0, std::memcmp(uncached.data(), second.data(), uncached.size() * sizeof(float)));
    fs::remove(file);
  }
}

TEST(PackedWeightCache, HitsAfterTheFirstLoad) {
  CacheSandbox box;
  StoreLoad first = load_q_proj(box.model(), box.cache(), Precision::int8);
  EXPECT_EQ(first.store->packed_cache()->hits(), 0u);
  EXPECT_EQ(first.store->packed_cache()->misses(), 1u);
  StoreLoad second = load_q_proj(box.model(), box.cache(), Precision::int8);
  EXPECT_EQ(second.store->packed_cache()->hits(), 1u);
  EXPECT_EQ(second.store->packed_cache()->misses(), 0u);
  ASSERT_NE(second.linear.packed, nullptr);
  EXPECT_EQ(second.linear.packed->precision(), Precision::int8);
  // Another dtype is another file.
  StoreLoad f32 = load_q_proj(box.model(), box.cache(), Precision::f32);
  EXPECT_EQ(f32.store->packed_cache()->hits(), 0u);
}

TEST(PackedWeightCache, CorruptAndTruncatedFilesAreRebuilt) {
  CacheSandbox box;
  const std::vector<float> reference = clip_outputs(box.model(), Precision::int8);
  const fs::path file = box.cache_file();
  ASSERT_FALSE(file.empty());
  const std::string good = read_cache_bytes(file);
  const PackedCacheIndex index =
      parse_packed_cache(reinterpret_cast<const uint8_t*>(good.data()), good.size(), "good");
  ASSERT_FALSE(index.layers.empty());
  std::string flipped = good;
  flipped[index.layers.back().slices[0].first + 10] ^= 0x40;  // one byte of packed weights
  for (const std::string& bad : {flipped, good.substr(0, good.size() / 2), std::string("junk")}) {
    write_cache_bytes(file, bad);
    testing::internal::CaptureStderr();
    const std::vector<float> out = clip_outputs(box.model(), Precision::int8);
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("packed-weight cache"), std::string::npos) << err;
    EXPECT_EQ(0, std::memcmp(reference.data(), out.data(), out.size() * sizeof(float)));
    // Rebuilt: the next load takes every layer from it.
    StoreLoad again = load_q_proj(box.model(), box.cache(), Precision::int8);
    EXPECT_EQ(again.store->packed_cache()->hits(), 1u);
    EXPECT_EQ(read_cache_bytes(file).size(), good.size());
  }
}

// verify_all(): every layer hashed over the pool's threads while other work
// runs beside it; a corrupt layer is dropped (and packed again) before use.
TEST(PackedWeightCache, VerifyAllDropsCorruptLayersBeforeUse) {
  CacheSandbox box;
  const StoreLoad reference = load_q_proj(box.model(), box.cache(), Precision::int8);
  const fs::path file = box.cache_file();
  ASSERT_FALSE(file.empty());
  const std::string good = read_cache_bytes(file);
  const PackedCacheIndex index =
      parse_packed_cache(reinterpret_cast<const uint8_t*>(good.data()), good.size(), "good");
  ASSERT_EQ(index.layers.size(), 1u);
  ThreadPool pool(2);
  PackedCacheSettings settings;
  settings.enabled = true;
  settings.dir = box.cache();
  const std::vector<fs::path> weights = {box.model() / "model.safetensors"};
  const std::string name = "text_model.encoder.layers.0.self_attn.q_proj";
  {
    PackedWeightCache cache(settings, weights, Precision::int8);
    bool ran = false;
    testing::internal::CaptureStderr();
    cache.verify_all(pool, [&] { ran = true; });
    EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
    EXPECT_TRUE(ran);
    EXPECT_NE(cache.find(name, 32, 32, Precision::int8), nullptr);
    EXPECT_THROW(cache.verify_all(pool, [] { throw_error(ErrorKind::bad_input, "alongside"); }),
                 Error);
  }
  std::string flipped = good;
  flipped[index.layers[0].scale + 3] ^= 0x01;  // one bit of a channel scale
  write_cache_bytes(file, flipped);
  PackedWeightCache cache(settings, weights, Precision::int8);
  testing::internal::CaptureStderr();
  cache.verify_all(pool, {});
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("fails its checksum"), std::string::npos) << err;
  EXPECT_EQ(cache.find(name, 32, 32, Precision::int8), nullptr);
  EXPECT_EQ(cache.hits(), 0u);
  EXPECT_EQ(cache.misses(), 1u);
}

TEST(PackedWeightCache, ChangedWeightFileIsStale) {
  CacheSandbox box;
  load_q_proj(box.model(), box.cache(), Precision::int8);
  const fs::path weights = box.model() / "model.safetensors";
  fs::last_write_time(weights, fs::last_write_time(weights) + std::chrono::seconds(5));
  testing::internal::CaptureStderr();
  StoreLoad stale = load_q_proj(box.model(), box.cache(), Precision::int8);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("stale"), std::string::npos) << err;
  EXPECT_EQ(stale.store->packed_cache()->hits(), 0u);
  StoreLoad fresh = load_q_proj(box.model(), box.cache(), Precision::int8);
  EXPECT_EQ(fresh.store->packed_cache()->hits(), 1u);
}

TEST(PackedWeightCache, UnwritableFolderFallsBackToPacking) {
  CacheSandbox box;
  // A cache folder below a regular file cannot be created, even by root.
  write_cache_bytes(box.cache() / "file", "x");
  const fs::path blocked = box.cache() / "file" / "packed";
  testing::internal::CaptureStderr();
  StoreLoad l = load_q_proj(box.model(), blocked, Precision::int8);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("packed-weight cache"), std::string::npos) << err;
  ASSERT_NE(l.linear.packed, nullptr);
  EXPECT_EQ(l.linear.packed->precision(), Precision::int8);
}

TEST(PackedWeightCache, SettingsFromEnvironment) {
  CacheSandbox box;
  PackedCacheSettings s = PackedCacheSettings::from_environment();
  EXPECT_TRUE(s.enabled);
  EXPECT_EQ(s.dir, box.cache());
  EXPECT_EQ(s.min_model_bytes, 0u);
  ::setenv("MMFUSE_WEIGHT_CACHE", "off", 1);
  EXPECT_FALSE(PackedCacheSettings::from_environment().enabled);
  ::unsetenv("MMFUSE_WEIGHT_CACHE");
  ::unsetenv("MMFUSE_CACHE_DIR");
  s = PackedCacheSettings::from_environment();
  EXPECT_GT(s.min_model_bytes, 0u);  // the default folder skips small models
}

}  // namespace
}  // namespace mmfuse
