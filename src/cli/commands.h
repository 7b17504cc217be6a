// Each mmfuse subcommand registers itself on the CLI11 app through one of these.
// A command's callback throws mmfuse::Error on bad input; main() maps it to exit code 2.
#pragma once

#include <CLI/CLI.hpp>

namespace mmfuse::cli {

void register_tokenize(CLI::App& app);
void register_embed(CLI::App& app);
void register_classify(CLI::App& app);
void register_pull(CLI::App& app);
void register_bench(CLI::App& app);
void register_sensor(CLI::App& app);
void register_sound(CLI::App& app);
void register_index(CLI::App& app);
void register_search(CLI::App& app);
void register_transcribe(CLI::App& app);
void register_align(CLI::App& app);
void register_speech_score(CLI::App& app);
void register_serve(CLI::App& app);
void register_demo(CLI::App& app);
void register_inspect(CLI::App& app);
void register_alarms(CLI::App& app);  // `alarms` and `store`
void register_generate(CLI::App& app);
void register_chat(CLI::App& app);
void register_caption(CLI::App& app);
void register_detect(CLI::App& app);

}  // namespace mmfuse::cli
