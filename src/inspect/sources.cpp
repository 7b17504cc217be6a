// Source resolution for inspection points (see sources.h).
#include "inspect/sources.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "audio/audio_files.h"
#include "core/strings.h"
#include "mmfuse/error.h"

namespace mmfuse::inspect {

namespace fs = std::filesystem;

bool has_source_extension(const fs::path& path, SourceKind kind) {
  const std::string ext = ascii_lower(path.extension().string());
  switch (kind) {
    case SourceKind::image:
      return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".webp" || ext == ".bmp";
    case SourceKind::infrared: return ext == ".png";
    case SourceKind::audio: return has_audio_extension(path);
    case SourceKind::csv: return ext == ".csv";
  }
  return false;
}

std::optional<fs::path> resolve_source(const fs::path& source, SourceKind kind) {
  std::error_code ec;
  const auto st = fs::status(source, ec);
  if (ec || !fs::exists(st)) return std::nullopt;
  if (!fs::is_directory(st)) return source;
  std::optional<fs::path> best;
  fs::file_time_type best_time{};
  for (const auto& entry : fs::directory_iterator(source, ec)) {
    if (!entry.is_regular_file(ec) || !has_source_extension(entry.path(), kind)) continue;
    const auto name = entry.path().filename().string();
    if (!name.empty() && name[0] == '.') continue;  // temporary files of writers in progress
    const auto t = entry.last_write_time(ec);
    if (ec) continue;
    if (!best || t > best_time || (t == best_time && entry.path() > *best)) {
      best = entry.path();
      best_time = t;
    }
  }
  return best;
}

std::string read_file_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  MMFUSE_CHECK(in, not_found, "'" + path.string() + "' cannot be opened");
  std::ostringstream s;
  s << in.rdbuf();
  MMFUSE_CHECK(!in.bad(), bad_input, "'" + path.string() + "' cannot be read");
  return s.str();
}

}  // namespace mmfuse::inspect
