#include "vision/image_files.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "mmfuse/error.h"

namespace mmfuse {

namespace fs = std::filesystem;

bool has_image_file_extension(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".webp" || ext == ".bmp";
}

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// "folder/stem" in lower case: photos and their masks share it.
std::string stem_key(const fs::path& p) {
  return lower((p.parent_path() / p.stem()).string());
}

// non_png_stems: stem_key() of every non-PNG image of the folder expansion.
bool looks_like_mask(const fs::path& path, const std::set<std::string>& non_png_stems) {
  const std::string stem = lower(path.stem().string());
  if (ends_with(stem, "_mask") || ends_with(stem, "-mask")) return true;
  return lower(path.extension().string()) == ".png" && non_png_stems.count(stem_key(path)) > 0;
}

}  // namespace

std::vector<fs::path> collect_image_files(const std::vector<std::string>& inputs,
                                          const std::string& what) {
  std::set<fs::path> out;
  for (const auto& input : inputs) {
    std::error_code ec;
    const auto st = fs::status(input, ec);
    MMFUSE_CHECK(fs::exists(st), not_found, input + ": no such file or folder");
    if (!fs::is_directory(st)) {
      out.insert(fs::path(input));
      continue;
    }
    fs::recursive_directory_iterator it(input, fs::directory_options::skip_permission_denied, ec), end;
    MMFUSE_CHECK(!ec, bad_input, input + ": cannot list the folder: " + ec.message());
    std::vector<fs::path> found;
    for (; it != end; it.increment(ec)) {
      if (ec) break;
      if (it->is_regular_file(ec) && has_image_file_extension(it->path())) found.push_back(it->path());
    }
    std::set<std::string> non_png_stems;
    for (const fs::path& f : found)
      if (lower(f.extension().string()) != ".png") non_png_stems.insert(stem_key(f));
    for (const fs::path& f : found)
      if (!looks_like_mask(f, non_png_stems)) out.insert(f);
  }
  MMFUSE_CHECK(!out.empty(), bad_input, what + ": no image files found");
  return {out.begin(), out.end()};
}

}  // namespace mmfuse
