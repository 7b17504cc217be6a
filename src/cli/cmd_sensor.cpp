// Being written: the `mmfuse sensor` commands (issue 3).
#include "cli/commands.h"

namespace mmfuse::cli {
void register_sensor(CLI::App&) {}
}  // namespace mmfuse::cli
