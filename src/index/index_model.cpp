// Model identity checks between an index folder and a model folder.
#include "index/index_model.h"

#include <filesystem>

#include "index/content_hash.h"
#include "mmfuse/error.h"
#include "models/registry.h"

namespace fs = std::filesystem;

namespace mmfuse {

IndexSettings settings_for_model(const DualEncoder& model, const std::string& model_dir) {
  IndexSettings s;
  s.model_name = model.name();
  s.model_path = fs::absolute(model_dir).lexically_normal().string();
  s.model_id = model_fingerprint(model_dir);
  s.dim = model.dim();
  return s;
}

std::unique_ptr<DualEncoder> load_index_model(const IndexSettings& settings,
                                              const std::string& index_dir,
                                              const std::string& model_dir,
                                              std::shared_ptr<ThreadPool> pool,
                                              Precision precision) {
  const std::string dir = model_dir.empty() ? settings.model_path : model_dir;
  if (model_dir.empty() && !fs::is_directory(dir))
    throw_error(ErrorKind::not_found, index_dir + ": the model folder it was built with (" + dir +
                                          ") is gone; give a copy of it as the model folder");
  const std::string id = model_fingerprint(dir);
  if (id != settings.model_id) {
    std::string msg = "model " + dir + " differs from the model the index " + index_dir +
                      " was built with (" + settings.model_name + ", dim " +
                      std::to_string(settings.dim) + ", " + settings.model_path + ")";
    if (model_dir.empty()) msg += "; its files changed since";
    throw_error(ErrorKind::bad_input, msg);
  }
  auto model = open_dual_encoder(dir, std::move(pool), precision);
  MMFUSE_CHECK(model->dim() == settings.dim, bad_input,
               dir + ": embedding dimension " + std::to_string(model->dim()) +
                   ", the index holds " + std::to_string(settings.dim));
  return model;
}

}  // namespace mmfuse
