// A real PostgreSQL 15 server for the store tests: initdb in a temporary folder,
// `postgres` listening on 127.0.0.1 at a free port (its socket in that folder too),
// readiness awaited with PQping, a fresh database per test, stopped (and the folder
// removed) at exit. PostgreSQL refuses to run as root, so as root (CI) the folder is
// handed to the `postgres` user and initdb/postgres run as that user. Skips, with a
// message naming what is missing, only where Debian's binaries are not installed.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "test_store_util.h"  // free_port

namespace mmfuse::test {

class PostgresServer {
 public:
  static constexpr const char* kBinDir = "/usr/lib/postgresql/15/bin";
  static bool available() {
    const std::string bin = kBinDir;
    return ::access((bin + "/initdb").c_str(), X_OK) == 0 &&
           ::access((bin + "/postgres").c_str(), X_OK) == 0;
  }
  static std::string missing_message() {
    return std::string("PostgreSQL 15 is not installed (") + kBinDir +
           "/initdb, postgres): apt-get install postgresql (scripts/setup.sh does)";
  }

  PostgresServer() : owner_(::getpid()) {}
  ~PostgresServer() {
    if (::getpid() != owner_) return;  // a forked child must not stop its parent's server
    stop();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // initdb (once) and start; false with *error on failure.
  bool start(std::string* error) {
    if (dir_.empty() && !init(error)) return false;
    if (port_ == 0) port_ = free_port();
    pid_ = ::fork();
    if (pid_ == 0) {
      become_owner();
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 1);
      ::dup2(null, 2);
      const std::string bin = std::string(kBinDir) + "/postgres", data = (dir_ / "data").string(),
                        port = std::to_string(port_), sock = dir_.string();
      // fsync off: the tests kill processes, not machines; the OS keeps what was written.
      ::execl(bin.c_str(), bin.c_str(), "-D", data.c_str(), "-p", port.c_str(), "-k", sock.c_str(),
              "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c",
              "full_page_writes=off", "-c", "max_connections=200", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    const std::string ping = "host=127.0.0.1 port=" + std::to_string(port_) +
                             " dbname=postgres user=mmfuse connect_timeout=2";
    for (int i = 0; i < 600; ++i) {
      if (PQping(ping.c_str()) == PQPING_OK) return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        *error = "postgres exited at start (status " + std::to_string(status) + ")";
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    *error = "postgres did not answer within 30 s";
    stop();
    return false;
  }
  // Fast shutdown (SIGINT), or SIGKILL when `kill9` (a crash: it recovers from its WAL
  // at the next start).
  void stop(bool kill9 = false) {
    if (pid_ <= 0) return;
    // A crash takes the backends down with the postmaster: left to notice its death
    // on their own (slow on a loaded machine) they would still hold the shared memory
    // when the next start() comes, and that start would refuse to run.
    const std::vector<pid_t> backends = kill9 ? children_of(pid_) : std::vector<pid_t>{};
    ::kill(pid_, kill9 ? SIGKILL : SIGINT);
    for (pid_t b : backends) ::kill(b, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    if (kill9) {
      for (int i = 0; i < 200 && (port_accepts(port_) || any_alive(backends)); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      std::error_code ec;
      std::filesystem::remove(dir_ / "data" / "postmaster.pid", ec);
    }
  }
  bool running() const { return pid_ > 0; }
  int port() const { return port_; }
  std::string url(const std::string& db) const {
    return "postgresql://mmfuse@127.0.0.1:" + std::to_string(port_) + "/" + db;
  }
  // A new, empty database; its URL.
  std::string fresh_database() {
    static std::atomic<int> counter{0};
    const std::string name = "t" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    exec("postgres", "CREATE DATABASE " + name);
    return url(name);
  }
  // Runs SQL on a database (test set-up: what the store would refuse to do).
  void exec(const std::string& db, const std::string& sql) const {
    PGconn* c = PQconnectdb(url(db).c_str());
    ASSERT_EQ(PQstatus(c), CONNECTION_OK) << PQerrorMessage(c);
    PGresult* r = PQexec(c, sql.c_str());
    EXPECT_TRUE(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK)
        << sql << ": " << PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(c);
  }
  // A login role that must give `password` over TCP (scram-sha-256; every other role
  // keeps trust), for the wrong-password checks.
  void require_password(const std::string& role, const std::string& password) {
    exec("postgres", "CREATE ROLE " + role + " LOGIN PASSWORD '" + password + "'");
    const std::filesystem::path hba = dir_ / "data" / "pg_hba.conf";
    std::string text;
    {
      std::ifstream in(hba);
      text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    std::ofstream(hba, std::ios::trunc)
        << "host all " << role << " 127.0.0.1/32 scram-sha-256\n" << text;
    exec("postgres", "SELECT pg_reload_conf()");
    // The postmaster reloads asynchronously: wait until the role is refused without it.
    for (int i = 0; i < 100; ++i) {
      PGconn* c = PQconnectdb(("host=127.0.0.1 port=" + std::to_string(port_) +
                               " dbname=postgres user=" + role + " password=wrong")
                                  .c_str());
      const bool refused = PQstatus(c) != CONNECTION_OK;
      PQfinish(c);
      if (refused) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "pg_hba.conf reload did not take";
  }

 private:
  // Processes whose parent is `parent` (from /proc/*/stat).
  static std::vector<pid_t> children_of(pid_t parent) {
    std::vector<pid_t> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
      const std::string name = e.path().filename().string();
      if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream in(e.path() / "stat");
      std::string line;
      std::getline(in, line);
      const size_t close = line.rfind(')');  // the command name may hold spaces
      if (close == std::string::npos) continue;
      char state = 0;
      int ppid = 0;
      if (std::sscanf(line.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == parent)
        out.push_back(static_cast<pid_t>(std::stoi(name)));
    }
    return out;
  }
  // True while one of `pids` runs (a zombie waiting for its reaper counts as gone).
  static bool any_alive(const std::vector<pid_t>& pids) {
    for (pid_t p : pids) {
      std::ifstream in("/proc/" + std::to_string(p) + "/stat");
      std::string line;
      if (!std::getline(in, line)) continue;
      const size_t close = line.rfind(')');
      if (close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z')
        return true;
    }
    return false;
  }
  bool init(std::string* error) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mmfuse-pg-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) {
      *error = "mkdtemp failed";
      return false;
    }
    dir_ = tmpl;
    if (::geteuid() == 0) {
      const passwd* pw = ::getpwnam("postgres");
      if (!pw) {
        *error = "running as root and there is no postgres user to run the server as";
        return false;
      }
      uid_ = pw->pw_uid;
      gid_ = pw->pw_gid;
      if (::chown(dir_.c_str(), uid_, gid_) != 0) {
        *error = "chown " + dir_.string() + " failed";
        return false;
      }
    }
    const pid_t pid = ::fork();
    if (pid == 0) {
      become_owner();
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 1);
      ::dup2(null, 2);
      const std::string bin = std::string(kBinDir) + "/initdb", data = (dir_ / "data").string();
      ::execl(bin.c_str(), bin.c_str(), "-D", data.c_str(), "-U", "mmfuse", "-A", "trust", "-E",
              "UTF8", "--locale=C", "--no-sync", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      *error = "initdb failed (status " + std::to_string(status) + ")";
      return false;
    }
    return true;
  }
  // In a forked child: drop to the postgres user when running as root.
  void become_owner() const {
    if (::chdir(dir_.c_str()) != 0) ::_exit(125);
    if (uid_ == 0) return;
    if (::setgid(gid_) != 0 || ::setuid(uid_) != 0) ::_exit(126);
  }

  pid_t owner_;
  std::filesystem::path dir_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  int port_ = 0;
  pid_t pid_ = -1;
};

// The server the whole test binary shares (started on first use, stopped at exit);
// null with *why when it cannot run here.
inline PostgresServer* shared_postgres(std::string* why) {
  static std::string error;
  static PostgresServer* server = [] {
    if (!PostgresServer::available()) {
      error = PostgresServer::missing_message();
      return static_cast<PostgresServer*>(nullptr);
    }
    static PostgresServer s;
    if (!s.start(&error)) return static_cast<PostgresServer*>(nullptr);
    return &s;
  }();
  if (!server) *why = error;
  return server;
}

}  // namespace mmfuse::test

namespace mmfuse::test {

enum class StoreBackend { sqlite, postgres };

inline std::string backend_name(const ::testing::TestParamInfo<StoreBackend>& info) {
  return info.param == StoreBackend::sqlite ? "Sqlite" : "Postgres";
}

// A store test run on each back-end: open(options, name) gives the store called `name`
// (SQLite: <temp>/<name>/mmfuse.db; PostgreSQL: a fresh database per name, evidence
// under <temp>/<name>). Skips the PostgreSQL run only where the binaries are missing.
class StoreBackendTest : public ::testing::TestWithParam<StoreBackend> {
 protected:
  void SetUp() override {
    if (GetParam() != StoreBackend::postgres) return;
    if (!PostgresServer::available()) GTEST_SKIP() << PostgresServer::missing_message();
    std::string why;
    pg_ = shared_postgres(&why);
    ASSERT_NE(pg_, nullptr) << "PostgreSQL test server: " << why;
  }
  bool postgres() const { return GetParam() == StoreBackend::postgres; }
  store::StoreLocation location(const std::string& name = "data") {
    const std::filesystem::path data = dir_.path() / name;
    if (!postgres()) return store::sqlite_location(data);
    auto it = databases_.find(name);
    if (it == databases_.end()) it = databases_.emplace(name, pg_->fresh_database()).first;
    store::StoreLocation l;
    l.kind = store::StoreKind::postgres;
    l.conninfo = it->second;
    l.data_dir = data;
    return l;
  }
  // The URL `--store` takes for that store.
  std::string url(const std::string& name = "data") {
    const store::StoreLocation l = location(name);
    return postgres() ? l.conninfo : "sqlite://" + l.db_file.string();
  }
  std::unique_ptr<store::Store> open(const store::StoreOptions& options = {},
                                     const std::string& name = "data") {
    return store::Store::open(location(name), options);
  }
  const std::filesystem::path& temp() const { return dir_.path(); }
  PostgresServer* server() const { return pg_; }

 private:
  StoreTempDir dir_;
  PostgresServer* pg_ = nullptr;
  std::map<std::string, std::string> databases_;
};

}  // namespace mmfuse::test
