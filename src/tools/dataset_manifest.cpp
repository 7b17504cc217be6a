#include "tools/dataset_manifest.h"

#include <fstream>
#include <sstream>

#include "mmfuse/error.h"

namespace mmfuse {

std::vector<std::vector<std::string>> read_dataset_manifest(const std::filesystem::path& root,
                                                            const std::string& header,
                                                            size_t min_columns) {
  const std::filesystem::path path = root / "manifest.csv";
  std::ifstream in(path);
  MMFUSE_CHECK(in.good(), not_found, path.string() + ": cannot open");
  std::string line;
  std::getline(in, line);
  MMFUSE_CHECK(line.rfind(header, 0) == 0, bad_input,
               path.string() + ": header is not " + header + ",...");
  std::vector<std::vector<std::string>> rows;
  size_t line_no = 1;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<std::string> cells;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) cells.push_back(cell);
    MMFUSE_CHECK(cells.size() >= min_columns, bad_input,
                 path.string() + ":" + std::to_string(line_no) + ": fewer than " +
                     std::to_string(min_columns) + " columns");
    rows.push_back(std::move(cells));
  }
  return rows;
}

}  // namespace mmfuse
