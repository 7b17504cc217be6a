// The manifest.csv of an evaluation data set (../shared/data/images/*): plain
// comma-separated cells, no quoting, a header line first.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace mmfuse {

// The rows of root/manifest.csv, blank lines skipped. The header must start with
// `header` and every row must have at least `min_columns` cells; errors name the file
// (and line).
std::vector<std::vector<std::string>> read_dataset_manifest(const std::filesystem::path& root,
                                                            const std::string& header,
                                                            size_t min_columns);

}  // namespace mmfuse
