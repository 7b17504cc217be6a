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
    for (; it != end; it.increment(ec)) {
      if (ec) break;
      if (it->is_regular_file(ec) && has_image_file_extension(it->path())) out.insert(it->path());
    }
  }
  MMFUSE_CHECK(!out.empty(), bad_input, what + ": no image files found");
  return {out.begin(), out.end()};
}

}  // namespace mmfuse
