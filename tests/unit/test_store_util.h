// Helpers for the store and alarm tests: temp data dirs, inspection records, a free
// loopback port, and a real mosquitto broker run as a child process.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "record/inspection_record.h"
#include "store/store.h"
#include "test_util.h"  // wait_until, holds_for

namespace mmfuse::test {

// Runs the built `mmfuse` with ARGS (stderr dropped): its exit code and stdout.
struct CliRun {
  int code = -1;
  std::string out;
};

inline CliRun run_mmfuse(const std::string& args) {
  const std::string cmd = std::string(MMFUSE_BINARY) + " " + args + " 2>/dev/null";
  CliRun r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// A fresh folder under the system temp dir, removed with its contents at scope exit.
class StoreTempDir {
 public:
  StoreTempDir() {
    static int counter = 0;
    path_ = std::filesystem::temp_directory_path() /
            ("mmfuse-store-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~StoreTempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// An inspection of `device` with all four modalities; camera anomalous when `alarm`.
inline inspect::InspectionRecord make_record(const std::string& device, bool alarm,
                                             const std::string& round = "",
                                             const std::vector<std::string>& evidence = {}) {
  inspect::InspectionRecord r;
  r.round_id = round;
  r.device_id = device;
  r.point_id = "p1";
  r.started_ms = 1000;
  r.finished_ms = 1500;
  r.fusion_rule = "weighted_vote";
  for (inspect::Modality m : inspect::kAllModalities) {
    inspect::ModalityResult x;
    x.modality = m;
    const bool bad = alarm && m == inspect::Modality::camera;
    x.status = bad ? inspect::ModalityStatus::anomaly : inspect::ModalityStatus::ok;
    x.score = bad ? 0.9 : 0.1;
    x.raw_score = bad ? 9.0 : 1.0;
    x.decision = bad;
    x.message = bad ? "scratch 12x3 px" : "normal";
    x.detail = {{"boxes", bad ? 1 : 0}};
    if (m == inspect::Modality::camera) x.evidence = evidence;
    r.modalities.push_back(x);
  }
  r.fused_score = alarm ? 0.4 : 0.0;
  r.alarm = alarm;
  r.alarm_type = alarm ? "camera" : "";
  return r;
}

inline std::vector<store::SensorReading> make_readings(const std::string& device, int n,
                                                       int64_t t0 = 1000) {
  std::vector<store::SensorReading> v;
  for (int i = 0; i < n; ++i) v.push_back({device, "p1", "temperature", t0 + 100 * i, 20.0 + i});
  return v;
}

inline void touch_file(const std::filesystem::path& p, const std::string& text = "evidence") {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

// A TCP port on 127.0.0.1 that was free a moment ago.
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

inline bool port_accepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// /usr/sbin/mosquitto on 127.0.0.1:port, anonymous, no persistence; killed with -9 by
// stop() or the destructor.
class Broker {
 public:
  static constexpr const char* kBinary = "/usr/sbin/mosquitto";
  Broker(const std::filesystem::path& dir, int port) : dir_(dir), port_(port) {
    conf_ = dir / "mosquitto.conf";
    std::ofstream(conf_) << "listener " << port << " 127.0.0.1\n"
                         << "allow_anonymous true\npersistence false\nlog_dest none\n";
  }
  ~Broker() { stop(); }
  static bool available() { return ::access(kBinary, X_OK) == 0; }
  // Starts the broker and waits until it accepts connections.
  bool start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execl(kBinary, kBinary, "-c", conf_.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 200; ++i) {
      if (port_accepts(port_)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // Freezes / thaws the broker process: its sockets stay open but nothing is answered.
  void pause() { ::kill(pid_, SIGSTOP); }
  void resume() { ::kill(pid_, SIGCONT); }
  int port() const { return port_; }

 private:
  std::filesystem::path dir_, conf_;
  int port_;
  pid_t pid_ = -1;
};

}  // namespace mmfuse::test
