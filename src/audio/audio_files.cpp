#include "audio/audio_files.h"

#include <algorithm>
#include <cctype>

#include "core/strings.h"
#include "mmfuse/error.h"

namespace mmfuse {

namespace fs = std::filesystem;

bool has_audio_extension(const fs::path& path) {
  const std::string ext = ascii_lower(path.extension().string());
  static const char* const kExtensions[] = {".wav",  ".wave", ".flac", ".ogg", ".oga",
                                            ".opus", ".aif",  ".aiff", ".au",  ".snd",
                                            ".w64",  ".caf",  ".mp3"};
  return std::find(std::begin(kExtensions), std::end(kExtensions), ext) != std::end(kExtensions);
}

std::vector<fs::path> collect_audio_files(const std::vector<std::string>& inputs,
                                          const std::string& what) {
  std::vector<fs::path> files;
  for (const std::string& input : inputs) {
    const fs::path p(input);
    std::error_code ec;
    if (!fs::exists(p, ec)) throw_error(ErrorKind::not_found, input + ": no such file or folder");
    if (fs::is_directory(p, ec)) {
      std::vector<fs::path> found;
      for (fs::recursive_directory_iterator it(p, ec), end; it != end && !ec; it.increment(ec))
        if (it->is_regular_file(ec) && has_audio_extension(it->path())) found.push_back(it->path());
      MMFUSE_CHECK(!ec, bad_input, input + ": cannot list folder: " + ec.message());
      std::sort(found.begin(), found.end());
      MMFUSE_CHECK(!found.empty(), bad_input,
                   input + ": folder holds no audio files (" + what + ")");
      files.insert(files.end(), found.begin(), found.end());
    } else {
      files.push_back(p);
    }
  }
  MMFUSE_CHECK(!files.empty(), bad_input, "no audio files given (" + what + ")");
  return files;
}

}  // namespace mmfuse
