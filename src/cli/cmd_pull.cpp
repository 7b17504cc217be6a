// `mmfuse pull REPO [--revision R] [--to DIR] [--include GLOB]...`: downloads a model
// folder from the Hugging Face hub ($HF_ENDPOINT, token from $HF_TOKEN) and prints a JSON
// summary on stdout. Progress goes to stderr: a bar on a terminal, else one line per file.
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "io/hub_pull.h"
#include "mmfuse/error.h"

namespace mmfuse::cli {

namespace {

using PullClock = std::chrono::steady_clock;

// hub::pull's messages name the option fields (revision, include patterns, destination
// folder); tell the user which flag sets the one a message is about.
std::string with_flag(const std::string& message) {
  for (const auto& [field, flag] :
       {std::pair{"include pattern", "--include"}, std::pair{"destination folder", "--to"},
        std::pair{"invalid revision", "--revision"}})
    if (message.find(field) != std::string::npos) return message + " (" + flag + ")";
  return message;
}

std::string human_bytes(std::uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

std::string human_duration(double seconds) {
  if (seconds < 0 || seconds > 99 * 3600) return "--:--";
  auto s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

int terminal_columns() {
  winsize ws{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
  return 80;
}

// Renders pull progress on stderr.
class ProgressPrinter : public hub::PullObserver {
 public:
  ProgressPrinter(bool tty, bool quiet) : tty_(tty), quiet_(quiet) {}

  void file_started(const std::string& name, std::uint64_t offset,
                    std::optional<std::uint64_t> total) override {
    name_ = name;
    start_ = PullClock::now();
    start_bytes_ = done_ = offset;
    total_ = total;
    active_ = true;
    if (tty_ && !quiet_) draw();
  }

  void file_progress(const std::string&, std::uint64_t done,
                     std::optional<std::uint64_t> total) override {
    done_ = done;
    total_ = total;
    auto now = PullClock::now();
    if (tty_ && !quiet_ && now - last_draw_ >= std::chrono::milliseconds(100)) draw();
  }

  void file_finished(const hub::PulledFile& file) override {
    bool transferred = active_ && name_ == file.name;
    double rate = transferred ? rate_bytes_per_s() : 0.0;
    active_ = false;
    if (quiet_) return;
    std::string line =
        file.name + "  " + human_bytes(file.size) + "  " + hub::to_string(file.status);
    if (transferred && rate > 0)
      line += "  (" + human_bytes(static_cast<std::uint64_t>(rate)) + "/s)";
    if (tty_) {
      std::fprintf(stderr, "\r\x1b[K%s\n", line.c_str());
    } else {
      std::fprintf(stderr, "mmfuse pull: %s\n", line.c_str());
    }
    std::fflush(stderr);
  }

  void warning(const std::string& message) override {
    if (tty_) std::fputs("\r\x1b[K", stderr);
    std::fprintf(stderr, "mmfuse pull: warning: %s\n", with_flag(message).c_str());
    if (tty_ && active_ && !quiet_) draw();
    std::fflush(stderr);
  }

  // Leaves the terminal on a fresh line if a bar is still drawn (on errors).
  void finish() {
    if (tty_ && active_ && !quiet_) std::fputs("\r\x1b[K", stderr);
    active_ = false;
  }

 private:
  double rate_bytes_per_s() const {
    double secs = std::chrono::duration<double>(PullClock::now() - start_).count();
    return secs > 0.05 ? static_cast<double>(done_ - start_bytes_) / secs : 0.0;
  }

  void draw() {
    last_draw_ = PullClock::now();
    double rate = rate_bytes_per_s();
    std::string right = "  " + human_bytes(done_);
    if (total_) right += " / " + human_bytes(*total_);
    right += "  " + (rate > 0 ? human_bytes(static_cast<std::uint64_t>(rate)) + "/s" : "--/s");
    if (total_ && *total_ >= done_)
      right += "  ETA " + (rate > 0 ? human_duration(static_cast<double>(*total_ - done_) / rate)
                                    : std::string("--:--"));
    int cols = terminal_columns() - 1;
    std::string name = name_;
    const int max_name = std::max(10, cols / 3);
    if (static_cast<int>(name.size()) > max_name)
      name = "..." + name.substr(name.size() - (max_name - 3));
    int bar = cols - static_cast<int>(name.size()) - static_cast<int>(right.size()) - 4;
    std::string line = name;
    if (bar >= 10 && total_ && *total_ > 0) {
      int filled = static_cast<int>(
          static_cast<double>(bar) *
          std::min(1.0, static_cast<double>(done_) / static_cast<double>(*total_)));
      line += " [" + std::string(filled, '#') + std::string(bar - filled, '.') + "]";
    }
    line += right;
    if (static_cast<int>(line.size()) > cols) line.resize(std::max(0, cols));
    std::fprintf(stderr, "\r\x1b[K%s", line.c_str());
    std::fflush(stderr);
  }

  bool tty_;
  bool quiet_;
  bool active_ = false;
  std::string name_;
  PullClock::time_point start_{};
  PullClock::time_point last_draw_{};
  std::uint64_t start_bytes_ = 0;
  std::uint64_t done_ = 0;
  std::optional<std::uint64_t> total_;
};

struct PullArgs {
  std::string repo;
  std::string revision = "main";
  std::string to;
  std::vector<std::string> include;
  bool quiet = false;
};

}  // namespace

void register_pull(CLI::App& app) {
  auto args = std::make_shared<PullArgs>();
  auto* cmd =
      app.add_subcommand("pull",
                         "Download a model folder from the Hugging Face hub ($HF_ENDPOINT, default "
                         "https://huggingface.co; token from $HF_TOKEN) and print a JSON summary");
  cmd->add_option("repo", args->repo, "Repository id, e.g. openai/clip-vit-base-patch32")
      ->required();
  cmd->add_option("-r,--revision", args->revision, "Branch, tag or commit")->capture_default_str();
  cmd->add_option("--to", args->to,
                  "Target directory (default: ./models/ORG--NAME, the repository id with '/' "
                  "replaced by '--')");
  cmd->add_option("--include", args->include,
                  "Download the repository files matching this glob ('*' also matches '/'); "
                  "repeatable. Default: the top-level *.json, *.txt, *.model files and the "
                  "safetensors weights")
      ->allow_extra_args(false);
  cmd->add_flag("-q,--quiet", args->quiet, "No progress output (warnings still go to stderr)");
  cmd->callback([args] {
    ProgressPrinter printer(::isatty(STDERR_FILENO) == 1, args->quiet);
    hub::PullOptions opts;
    opts.repo = args->repo;
    opts.revision = args->revision;
    opts.dir = args->to;
    opts.include = args->include;
    opts.observer = &printer;
    hub::PullResult result;
    try {
      result = hub::pull(opts);
    } catch (const Error& e) {
      printer.finish();
      throw Error(e.kind(), with_flag(e.what()));
    } catch (...) {
      printer.finish();
      throw;
    }
    std::printf("%s\n", hub::to_json(result).dump(2).c_str());
    std::fflush(stdout);
  });
}

}  // namespace mmfuse::cli
