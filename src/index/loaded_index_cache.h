// FAISS files already loaded in this process, shared by every reader of an
// index folder (the server searches the same 1M-vector file on every request;
// reading it each time would cost seconds). A file is named by its commit's
// generation and never rewritten, and the entry also records the file's inode,
// size and mtime, so a folder deleted and rebuilt under the same names is not
// served from the old copy. One entry per folder and item type: loading a newer
// generation drops the older one (readers still holding it keep it alive).
#pragma once

#include <filesystem>
#include <memory>

#include "index/vector_index.h"

namespace mmfuse {

// The loaded index at `path` (VectorIndex::load(path, params) on a miss).
// Throws what VectorIndex::load throws; a missing file is never served.
std::shared_ptr<const VectorIndex> load_shared_index(const std::filesystem::path& path,
                                                     const IndexParams& params);

}  // namespace mmfuse
