// The `mmfuse` command: parses arguments, runs one subcommand, and turns errors
// into messages on stderr and exit codes (2 bad input, 1 internal failure).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>

#include "cli/cmd_image.h"
#include "cli/commands.h"
#include "cli/omp_wait_policy.h"
#include "mmfuse/error.h"

int main(int argc, char** argv) {
  // `detect` runs its convolutions on oneDNN's libgomp threads; how they wait
  // between parallel regions is chosen at start (cli/omp_wait_policy.cpp).
  // libgomp reads the variables only when it loads, so the command re-executes
  // itself once (on failure it simply continues).
  if (argc > 1 && std::strcmp(argv[1], "detect") == 0 && mmfuse::cli::choose_omp_wait_policy())
    execv("/proc/self/exe", argv);
  CLI::App app{"mmfuse: multimodal embedding, retrieval and fusion engine"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "mmfuse 0.1.0");
  mmfuse::cli::register_tokenize(app);
  mmfuse::cli::register_embed(app);
  mmfuse::cli::register_classify(app);
  mmfuse::cli::register_pull(app);
  mmfuse::cli::register_bench(app);
  mmfuse::cli::register_sensor(app);
  mmfuse::cli::register_sound(app);
  mmfuse::cli::register_index(app);
  mmfuse::cli::register_search(app);
  mmfuse::cli::register_transcribe(app);
  mmfuse::cli::register_align(app);
  mmfuse::cli::register_speech_score(app);
  mmfuse::cli::register_serve(app);
  mmfuse::cli::register_demo(app);
  mmfuse::cli::register_inspect(app);
  mmfuse::cli::register_alarms(app);
  mmfuse::cli::register_generate(app);
  mmfuse::cli::register_chat(app);
  mmfuse::cli::register_caption(app);
  mmfuse::cli::register_image(app);
  mmfuse::cli::register_detect(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const mmfuse::Error& e) {
    std::fprintf(stderr, "mmfuse: error: %s\n", e.what());
    return e.kind() == mmfuse::ErrorKind::internal ? 1 : 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mmfuse: internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}
