// load_shared_index: one load per file for every reader, and never a stale
// copy when the folder is rebuilt under the same file names.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <numeric>

#include "index/loaded_index_cache.h"
#include "mmfuse/error.h"
#include "tools/ann_bench.h"

namespace mmfuse {
namespace {

namespace fs = std::filesystem;

void write_flat(const fs::path& path, size_t n, uint64_t seed) {
  auto data = random_unit_vectors(n, 8, seed);
  std::vector<int64_t> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  IndexParams p;
  VectorIndex::build(8, p, ids.data(), data.data(), n, 1).save(path);
}

TEST(LoadedIndexCache, SharesOneLoadAndNoticesReplacedFiles) {
  const fs::path dir = fs::temp_directory_path() / ("mmfuse_lic_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  IndexParams p;
  write_flat(dir / "image.1.faiss", 10, 1);
  auto first = load_shared_index(dir / "image.1.faiss", p);
  EXPECT_EQ(load_shared_index(dir / "image.1.faiss", p), first);  // same object
  EXPECT_EQ(first->size(), 10u);

  // A newer generation replaces the entry; the old copy lives on with its holders.
  write_flat(dir / "image.2.faiss", 20, 2);
  auto second = load_shared_index(dir / "image.2.faiss", p);
  EXPECT_EQ(second->size(), 20u);
  EXPECT_EQ(first->size(), 10u);

  // The folder rebuilt from scratch: same name, new file -> loaded again.
  fs::remove(dir / "image.2.faiss");
  write_flat(dir / "image.2.faiss", 30, 3);
  EXPECT_EQ(load_shared_index(dir / "image.2.faiss", p)->size(), 30u);

  // A file that is gone is not served from memory.
  fs::remove(dir / "image.2.faiss");
  EXPECT_THROW(load_shared_index(dir / "image.2.faiss", p), Error);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mmfuse
