// `mmfuse image ...` registers itself here (kept out of commands.h so that
// adding it does not rebuild every command).
#pragma once

#include <CLI/CLI.hpp>

namespace mmfuse::cli {

void register_image(CLI::App& app);

}  // namespace mmfuse::cli
