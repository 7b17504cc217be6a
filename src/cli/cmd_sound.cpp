// Being written: the `mmfuse sound` commands (issue 3).
#include "cli/commands.h"

namespace mmfuse::cli {
void register_sound(CLI::App&) {}
}  // namespace mmfuse::cli
