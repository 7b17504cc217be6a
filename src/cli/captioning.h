// Opening a captioning model for `mmfuse caption` and `index add --caption-model`:
// errors name the flag that gave the folder.
#pragma once

#include <memory>
#include <string>

#include "generate/captioner.h"

namespace mmfuse::cli {

// A Captioner over the generative folder `dir` computing on the command's pool.
// A folder that cannot generate (or a text-only model) is an error naming `flag`
// and the folder, exit status 2.
std::shared_ptr<const Captioner> open_captioner(const std::string& dir,
                                                const CaptionOptions& options,
                                                const std::string& flag);

}  // namespace mmfuse::cli
