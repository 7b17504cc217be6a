// Being written: the `mmfuse index` command(s) (issue 4).
#include "cli/commands.h"

namespace mmfuse::cli {
void register_index(CLI::App&) {}
}  // namespace mmfuse::cli
