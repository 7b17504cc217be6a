// load_dual_encoder: picks the text-image architecture from config.json's model_type.
#include "models/dual_encoder.h"

#include "io/model_folder.h"
#include "mmfuse/error.h"
#include "models/chinese_clip.h"
#include "models/clip.h"

namespace mmfuse {

std::unique_ptr<DualEncoder> load_dual_encoder(const std::filesystem::path& dir) {
  MMFUSE_CHECK(std::filesystem::is_directory(dir), not_found,
               dir.string() + ": model folder not found");
  const std::filesystem::path config_path = dir / "config.json";
  const nlohmann::json config = read_json_file(config_path);
  const std::string type = JsonFields(config, config_path.string()).string("model_type", "");
  if (type == "clip") return ClipModel::load(dir);
  if (type == "chinese_clip") return ChineseClipModel::load(dir);
  if (type == "bert")
    throw_error(ErrorKind::unsupported,
                config_path.string() +
                    ": a text-only encoder (model_type \"bert\") cannot embed "
                    "images; this needs a text-image model (clip, chinese_clip)");
  throw_error(ErrorKind::unsupported, config_path.string() + ": unsupported model_type \"" + type +
                                          "\" (text-image models: clip, chinese_clip)");
}

}  // namespace mmfuse
