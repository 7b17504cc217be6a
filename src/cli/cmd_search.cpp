// Being written: the `mmfuse search` command(s) (issue 4).
#include "cli/commands.h"

namespace mmfuse::cli {
void register_search(CLI::App&) {}
}  // namespace mmfuse::cli
