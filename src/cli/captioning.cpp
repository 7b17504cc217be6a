#include "cli/captioning.h"

#include "cli/common.h"
#include "models/registry.h"

namespace mmfuse::cli {

std::shared_ptr<const Captioner> open_captioner(const std::string& dir,
                                                const CaptionOptions& options,
                                                const std::string& flag) {
  try {
    std::shared_ptr<const GenerativeModel> model = open_generative_model(dir, command_pool());
    return std::make_shared<const Captioner>(std::move(model), options);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::internal) throw;
    // Registry messages name config.json; say which flag pointed there too.
    throw Error(e.kind(), flag + " " + dir + ": " + e.what());
  }
}

}  // namespace mmfuse::cli
