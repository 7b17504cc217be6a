#include "cli/omp_wait_policy.h"

#include <dirent.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace mmfuse::cli {

namespace {

// Runnable tasks right now, this process included (procs_running in /proc/stat); -1 if unknown.
int procs_running() {
  std::FILE* f = std::fopen("/proc/stat", "r");
  if (!f) return -1;
  char line[256];
  int n = -1;
  while (std::fgets(line, sizeof line, f))
    if (std::strncmp(line, "procs_running ", 14) == 0) {
      n = std::atoi(line + 14);
      break;
    }
  std::fclose(f);
  return n;
}

// Threads of this process that are running now (libraries start their own at load).
int own_running_threads() {
  DIR* dir = opendir("/proc/self/task");
  if (!dir) return 1;
  int n = 0;
  while (const dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    char path[64], buf[512];
    std::snprintf(path, sizeof path, "/proc/self/task/%.20s/stat", e->d_name);
    std::FILE* f = std::fopen(path, "r");
    if (!f) continue;
    const size_t len = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[len] = 0;
    const char* paren = std::strrchr(buf, ')');  // "pid (name) S ..."
    if (paren && paren[1] == ' ' && paren[2] == 'R') ++n;
  }
  closedir(dir);
  return std::max(n, 1);
}

// Whether nothing else was running over ~10 ms (10 samples, this process's threads excluded).
bool machine_idle() {
  int others = 0;
  for (int k = 0; k < 10; ++k) {
    const int n = procs_running();
    if (n < 1) return false;
    others += std::max(0, n - own_running_threads());
    const timespec ms{0, 1000000};
    nanosleep(&ms, nullptr);
  }
  return others < 5;  // on average under half a busy task besides this process
}

}  // namespace

// libgomp's threads spin for a while after every parallel region by default.
// Between the ~150 parallel regions of a YOLO image that steals the cores from
// the serial work and, on a busy machine, from each other (measured 1180 ms vs
// 112 ms per yolov8n image at --threads 2, load average 15), so the threads
// sleep at once (PASSIVE). Waking a sleeping thread costs ~10-50 us per region
// on this VM, though: on an otherwise idle machine a short spin (GOMP_SPINCOUNT
// 2000 pause loops, ~0.1 ms) makes yolov8n 52 -> 44 ms per image, while with
// one competing busy process it costs 11 % (73.5 -> 81.9 ms), so it is only
// chosen when nothing else runs at start.
bool choose_omp_wait_policy() {
  if (std::getenv("OMP_WAIT_POLICY")) return false;
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  if (!std::getenv("GOMP_SPINCOUNT") && machine_idle()) setenv("GOMP_SPINCOUNT", "2000", 1);
  return true;
}

}  // namespace mmfuse::cli
