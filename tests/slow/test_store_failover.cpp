// Several processes on one PostgreSQL store, with failures (docs/scale-out.md, "Tests"):
// a demo plant, three `mmfuse inspect --once` workers and two `mmfuse serve` replicas
// on one database, all of them dispatching alarms to a webhook receiver in this test.
// Round 1: a worker is killed (kill -9) while it holds a device, then restarted.
// Round 2: the PostgreSQL postmaster is killed mid-round and restarted on its data
// folder; the workers ride it out. Checks: every round finished with each (device,
// point) inspected exactly once, nothing committed before a kill lost, and every
// alarm delivered to the webhook exactly once, in outbox order; while the database is
// away the replicas answer /readyz and store routes with 503, and are ready again after.
// MMFUSE_FAILOVER_DEVICES sets the plant size (default 500, the plant: about
// 170 s of CPU, most of it the workers fitting and inspecting 500 devices twice; 12
// for a quick run). Release only (label "slow"): it runs ~6 mmfuse processes.
#include <fcntl.h>
#include <httplib.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../unit/test_postgres_util.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// A child process running mmfuse with stdout/stderr in files.
pid_t spawn(const std::vector<std::string>& args, const fs::path& out) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = ::open((out.string() + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(o, 1);
    ::dup2(e, 2);
    std::vector<char*> argv;
    static std::string binary = MMFUSE_BINARY;
    argv.push_back(binary.data());
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

// Exit status of a child (-1 when it did not exit within `limit`; it is killed then).
int wait_exit(pid_t pid, std::chrono::seconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > end) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(50ms);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Rows of one query as text (empty when the server does not answer). One connection
// per URL, kept (the polls below run every few milliseconds), re-opened when broken.
std::vector<std::vector<std::string>> pg_rows(const std::string& url, const std::string& sql) {
  static std::map<std::string, PGconn*> conns;
  PGconn*& c = conns[url];
  std::vector<std::vector<std::string>> out;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!c) c = PQconnectdb((url + "?connect_timeout=2").c_str());
    if (PQstatus(c) != CONNECTION_OK) PQreset(c);
    if (PQstatus(c) != CONNECTION_OK) return out;
    PGresult* r = PQexec(c, sql.c_str());
    const bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    if (ok)
      for (int i = 0; i < PQntuples(r); ++i) {
        out.emplace_back();
        for (int j = 0; j < PQnfields(r); ++j) out.back().push_back(PQgetvalue(r, i, j));
      }
    PQclear(r);
    if (ok || PQstatus(c) == CONNECTION_OK) return out;
  }
  return out;
}
int64_t pg_int(const std::string& url, const std::string& sql) {
  const auto rows = pg_rows(url, sql);
  return rows.empty() ? -1 : std::atoll(rows[0][0].c_str());
}

// Records the alarm id of every webhook delivery, in arrival order.
class WebhookReceiver {
 public:
  WebhookReceiver() {
    server_.Post("/alarms", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mutex_);
      got_.push_back(std::atoll(req.get_header_value("X-Mmfuse-Alarm-Id").c_str()));
      res.set_content("{}", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~WebhookReceiver() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  std::vector<int64_t> got() {
    std::lock_guard<std::mutex> lock(mutex_);
    return got_;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<int64_t> got_;
  int port_ = 0;
};

std::string host_name() {
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = 0;
  return host;
}

// Polls until `done(url)` or the limit; false on time-out.
template <class F>
bool poll(F&& done, std::chrono::seconds limit, std::chrono::milliseconds every = 20ms) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(every);
  }
  return false;
}

// Every round finished, each with every device and each (device, point) exactly once.
void expect_rounds_exactly_once(const std::string& url, int devices, int points) {
  const auto rounds = pg_rows(url,
                              "SELECT r.id, r.status, r.total, count(i.id), count(DISTINCT "
                              "i.device_id), count(DISTINCT (i.device_id, i.point_id)) FROM rounds "
                              "r LEFT JOIN inspections i ON i.round_id = r.id GROUP BY r.id, "
                              "r.status, r.total ORDER BY r.id");
  ASSERT_FALSE(rounds.empty());
  for (const auto& r : rounds) {
    SCOPED_TRACE("round " + r[0]);
    EXPECT_EQ(r[1], "finished");
    EXPECT_EQ(std::stoi(r[2]), points);
    EXPECT_EQ(std::stoi(r[3]), points) << "inspections (a duplicate or a loss)";
    EXPECT_EQ(std::stoi(r[4]), devices);
    EXPECT_EQ(std::stoi(r[5]), points);
  }
}

}  // namespace

TEST(StoreFailover, WorkersAndReplicasSurviveAKilledWorkerAndAKilledDatabase) {
  if (!mmfuse::test::PostgresServer::available())
    GTEST_SKIP() << mmfuse::test::PostgresServer::missing_message();
  const char* env = std::getenv("MMFUSE_FAILOVER_DEVICES");
  const int devices = env ? std::atoi(env) : 500;
  ASSERT_GE(devices, 6);
  // Generous limits that grow with the plant (a 500-device round on two busy cores).
  const auto limit = std::chrono::seconds(120 + 2 * devices);
  const auto t_start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  };
  // A server of its own: this test kills it.
  mmfuse::test::PostgresServer pg;
  std::string why;
  ASSERT_TRUE(pg.start(&why)) << why;
  pg.exec("postgres", "CREATE DATABASE plant");
  const std::string url = pg.url("plant");
  mmfuse::test::StoreTempDir dir;
  const fs::path plant = dir.path() / "plant";
  const std::string demo = std::string(MMFUSE_BINARY) + " demo --no-inspect --devices " +
                           std::to_string(devices) +
                           " --seed 5 --threads 2 --image-width 64 --image-height 64 "
                           "--ir-width 64 --ir-height 64 --audio-seconds 0.5 "
                           "--sensor-seconds 10 --baseline-clips 3 --baseline-clip-seconds 2 "
                           "--sensor-baseline-seconds 120 --data " +
                           plant.string() + " > /dev/null 2>&1";
  ASSERT_EQ(std::system(demo.c_str()), 0) << "mmfuse demo failed";
  WebhookReceiver hook;
  {
    // A new alarm per alarming inspection (no cooldown merge), all to our receiver.
    std::ofstream yaml(plant / "plant.yaml", std::ios::app);
    yaml << "alarms:\n  cooldown_s: 0\n  webhook: {url: \"http://127.0.0.1:" << hook.port()
         << "/alarms\", timeout_s: 5}\n";
  }
  const std::string plant_file = (plant / "plant.yaml").string();
  const int points = devices;  // the demo plant has one point per device
  std::printf("setup (PostgreSQL, demo plant of %d devices): %.1f s\n", devices, elapsed());

  std::vector<pid_t> replicas;
  for (int i = 0; i < 2; ++i)
    replicas.push_back(spawn({"serve", "--plant", plant_file, "--store", url, "--port", "0",
                              "--threads", "1", "--http-threads", "2"},
                             dir.path() / ("serve" + std::to_string(i) + ".out")));
  // Each replica prints {"listening": ..., "port": N} on stdout once its socket is bound.
  auto replica_port = [&](size_t i) {
    int port = 0;
    poll(
        [&] {
          const std::string out = read_text(dir.path() / ("serve" + std::to_string(i) + ".out"));
          const size_t at = out.find("\"port\":");
          if (at != std::string::npos) port = std::atoi(out.c_str() + at + 7);
          return port > 0;
        },
        limit, 50ms);
    return port;
  };
  std::vector<int> replica_ports;
  for (size_t i = 0; i < replicas.size(); ++i) {
    replica_ports.push_back(replica_port(i));
    ASSERT_GT(replica_ports.back(), 0)
        << "serve " << i << " never listened: "
        << read_text(dir.path() / ("serve" + std::to_string(i) + ".out.err"));
  }
  auto http_status = [](int port, const std::string& path) {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(5);
    c.set_read_timeout(10);
    const auto r = c.Get(path);
    return r ? r->status : -1;
  };
  auto all_replicas_answer = [&](const std::string& path, int status) {
    for (int port : replica_ports)
      if (http_status(port, path) != status) return false;
    return true;
  };
  EXPECT_TRUE(poll([&] { return all_replicas_answer("/readyz", 200); }, limit, 100ms))
      << "a replica never became ready";
  auto worker = [&](const std::string& name, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"inspect", "--plant", plant_file, "--store",  url,
                                     "--once",  "--json",  "--threads", "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    return spawn(args, dir.path() / (name + ".json"));
  };
  auto expect_exit_zero = [&](pid_t pid, const std::string& name) {
    EXPECT_EQ(wait_exit(pid, limit), 0)
        << name << ": " << read_text(dir.path() / (name + ".json.err"));
  };
  const std::string inspection_ids = "SELECT string_agg(id::text, ',' ORDER BY id) FROM inspections";
  auto ids_now = [&] {
    const auto rows = pg_rows(url, inspection_ids);
    return rows.empty() ? std::string() : rows[0][0];
  };
  auto still_there = [&](const std::string& before) {
    // Every id committed before is still there. Not a prefix check: a worker may
    // commit a smaller id (taken from the sequence earlier) after a larger one.
    auto id_set = [](const std::string& list) {
      std::set<std::string> ids;
      std::stringstream in(list);
      for (std::string id; std::getline(in, id, ',');) ids.insert(id);
      return ids;
    };
    const std::set<std::string> was = id_set(before), now = id_set(ids_now());
    std::string lost;
    for (const std::string& id : was)
      if (now.count(id) == 0) lost += " " + id;
    if (!lost.empty()) std::printf("inspections committed before and gone now:%s\n", lost.c_str());
    return lost.empty();
  };

  // ---- Round 1: a worker killed while it holds a device, then restarted ----
  // Only the victim has a short lease (its devices come back after 10 s: time for its
  // restart to join the round; the lease must cover fitting a device, done lazily on
  // its first claim, plus inspecting it on busy cores) and it does not dispatch (a
  // killed sink-lease holder would hold the webhook for 30 s).
  const pid_t victim = worker("w0", {"--lease", "10", "--no-deliver"});
  const pid_t w1 = worker("w1"), w2 = worker("w2");
  const std::string victim_name = host_name() + ":" + std::to_string(victim);
  const std::string held = "SELECT count(*) FILTER (WHERE done = 1) * 1000 + count(*) FILTER "
                           "(WHERE done = 0) FROM round_claims WHERE worker = '" +
                           victim_name + "'";
  // Mid-round: the victim finished a device and holds another.
  ASSERT_TRUE(poll(
      [&] {
        const int64_t v = pg_int(url, held);
        return v >= 1001 && v % 1000 >= 1;
      },
      limit, 5ms))
      << "the worker never held a device after finishing one: "
      << read_text(dir.path() / "w0.json.err");
  ::kill(victim, SIGKILL);
  ::waitpid(victim, nullptr, 0);
  const std::string committed1 = ids_now();
  std::printf("round 1: worker %d killed holding %lld device(s) at %.1f s\n",
              static_cast<int>(victim), static_cast<long long>(pg_int(url, held) % 1000),
              elapsed());
  const pid_t w0b = worker("w0b");
  expect_exit_zero(w1, "w1");
  expect_exit_zero(w2, "w2");
  expect_exit_zero(w0b, "w0b");
  EXPECT_TRUE(still_there(committed1));
  expect_rounds_exactly_once(url, devices, points);
  const int64_t rounds_after_1 = pg_int(url, "SELECT count(*) FROM rounds");
  std::printf("round 1 done (%lld round(s): the restarted worker joined it, or ran the next "
              "alone) at %.1f s\n",
              static_cast<long long>(rounds_after_1), elapsed());

  // ---- Round 2: the database killed mid-round and restarted ----
  std::vector<pid_t> ws;
  for (int i = 0; i < 3; ++i) ws.push_back(worker("v" + std::to_string(i)));
  const std::string progress = "SELECT count(*) FILTER (WHERE c.done = 1) * 1000 + count(*) "
                               "FILTER (WHERE c.done = 0) FROM round_claims c JOIN rounds r ON "
                               "r.id = c.round_id WHERE r.status = 'running'";
  ASSERT_TRUE(poll(
      [&] {
        const int64_t v = pg_int(url, progress);
        return v >= 2000 && v % 1000 >= 2;
      },
      limit, 5ms))
      << "round 2 never got under way";
  const std::string committed2 = ids_now();
  pg.stop(true);  // kill -9 of the postmaster
  // While the database is away the replicas stay up but take no traffic: /readyz and
  // the routes that need the store answer 503 (a load balancer routes around them).
  for (int port : replica_ports) {
    EXPECT_EQ(http_status(port, "/healthz"), 200);
    EXPECT_EQ(http_status(port, "/readyz"), 503);
    EXPECT_EQ(http_status(port, "/v1/devices"), 503);
  }
  ASSERT_TRUE(pg.start(&why)) << why;  // crash recovery from the WAL
  EXPECT_TRUE(poll([&] { return all_replicas_answer("/readyz", 200); }, limit, 100ms))
      << "a replica did not become ready again after the database came back";
  std::printf("round 2: database killed and restarted at %.1f s\n", elapsed());
  int rode_out = 0;
  for (int i = 0; i < 3; ++i) {
    const std::string name = "v" + std::to_string(i);
    expect_exit_zero(ws[i], name);
    rode_out += read_text(dir.path() / (name + ".json.err")).find("store unavailable") !=
                std::string::npos;
  }
  std::printf("round 2 done at %.1f s (%d of 3 workers waited for the database)\n", elapsed(),
              rode_out);
  EXPECT_TRUE(still_there(committed2));
  expect_rounds_exactly_once(url, devices, points);
  EXPECT_GT(pg_int(url, "SELECT count(*) FROM rounds"), rounds_after_1);

  // ---- Alarms: the replicas deliver what is left; once per alarm, in order ----
  EXPECT_TRUE(poll(
      [&] { return pg_int(url, "SELECT count(*) FROM outbox WHERE delivered_at_ms IS NULL") == 0; },
      90s, 100ms))
      << "outbox not drained";
  for (size_t i = 0; i < replicas.size(); ++i) {
    ::kill(replicas[i], SIGTERM);
    EXPECT_EQ(wait_exit(replicas[i], 60s), 0)
        << read_text(dir.path() / ("serve" + std::to_string(i) + ".out.err"));
  }
  std::vector<int64_t> expected;
  for (const auto& r : pg_rows(url, "SELECT alarm_id FROM outbox WHERE sink = 'webhook' ORDER BY id"))
    expected.push_back(std::atoll(r[0].c_str()));
  EXPECT_GT(expected.size(), 0u) << "the demo plant raised no alarm";
  EXPECT_EQ(static_cast<int64_t>(expected.size()), pg_int(url, "SELECT count(*) FROM alarms"));
  EXPECT_EQ(hook.got(), expected) << "webhook deliveries: duplicated, lost or out of order";
  std::printf("%zu alarms delivered once each; total %.1f s\n", expected.size(), elapsed());
}
