// Modbus TCP polling against a real libmodbus server started by the test on
// 127.0.0.1 (a free port), including a server restart to check reconnection.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <modbus/modbus.h>  // the test target has no modbus include path
#include <netinet/in.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "mmfuse/error.h"
#include "sensor/modbus_source.h"
#include "test_util.h"  // wait_until, holds_for

namespace mmfuse::sensor {
namespace {

using namespace std::chrono_literals;
using mmfuse::test::holds_for;
using mmfuse::test::wait_until;

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// A libmodbus TCP server in a thread: one client at a time, holding and input
// registers 0..99. set_holding() changes values while it runs.
class TestServer {
 public:
  explicit TestServer(int port) : port_(port) {
    mapping_ = modbus_mapping_new(0, 0, 100, 100);
    start();
  }
  ~TestServer() {
    stop();
    modbus_mapping_free(mapping_);
  }
  void start() {
    stop_ = false;
    ctx_ = modbus_new_tcp("127.0.0.1", port_);
    listen_fd_ = modbus_tcp_listen(ctx_, 1);
    ASSERT_GE(listen_fd_, 0) << modbus_strerror(errno);
    thread_ = std::thread([this] { serve(); });
  }
  void stop() {
    if (!thread_.joinable()) return;
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
    modbus_close(ctx_);
    modbus_free(ctx_);
    ctx_ = nullptr;
  }
  void set_holding(int addr, uint16_t v) {
    std::lock_guard lock(mutex_);
    mapping_->tab_registers[addr] = v;
  }
  void set_input(int addr, uint16_t v) {
    std::lock_guard lock(mutex_);
    mapping_->tab_input_registers[addr] = v;
  }
  size_t requests() const { return requests_; }

 private:
  // Waits for a readable fd with a short timeout so stop() is noticed.
  static bool readable(int fd) {
    fd_set set;
    FD_ZERO(&set);
    FD_SET(fd, &set);
    timeval tv{0, 20000};
    return ::select(fd + 1, &set, nullptr, nullptr, &tv) > 0;
  }
  void serve() {
    uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
    while (!stop_) {
      if (!readable(listen_fd_)) continue;
      int listen_fd = listen_fd_;
      const int client = modbus_tcp_accept(ctx_, &listen_fd);
      if (client < 0) continue;
      while (!stop_) {
        if (!readable(client)) continue;
        const int n = modbus_receive(ctx_, query);
        if (n <= 0) break;  // client closed or garbage
        std::lock_guard lock(mutex_);
        modbus_reply(ctx_, query, n, mapping_);
        ++requests_;
      }
      ::close(client);
    }
  }
  int port_;
  modbus_t* ctx_ = nullptr;
  modbus_mapping_t* mapping_ = nullptr;
  int listen_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> requests_{0};
  std::mutex mutex_;
};

ModbusOptions options_for(int port) {
  ModbusOptions o;
  o.port = port;
  o.rate_hz = 50.0;
  o.response_timeout = 200ms;
  o.backoff_initial = 20ms;
  o.backoff_max = 160ms;
  o.registers = {
      parse_register_spec("temperature:0:i16:0.1"), parse_register_spec("vibration:10:input:f32"),
      parse_register_spec("counter:2:u32"), parse_register_spec("humidity:5:u16:0.5:-10")};
  return o;
}

TEST(SensorModbus, ParsesRegisterSpecs) {
  const RegisterSpec a = parse_register_spec("temp:12:input:i32:swap:0.01:-5");
  EXPECT_EQ(a.name, "temp");
  EXPECT_EQ(a.address, 12);
  EXPECT_EQ(a.kind, RegisterKind::input);
  EXPECT_EQ(a.format, RegisterFormat::i32);
  EXPECT_TRUE(a.word_swap);
  EXPECT_EQ(a.scale, 0.01);
  EXPECT_EQ(a.offset, -5.0);
  const RegisterSpec b = parse_register_spec("x:0");
  EXPECT_EQ(b.kind, RegisterKind::holding);
  EXPECT_EQ(b.format, RegisterFormat::u16);
  EXPECT_EQ(b.scale, 1.0);
  for (const char* bad :
       {"x", ":1", "x:-1", "x:70000", "x:1:bogus", "x:1:1:2:3", "x:65535:u32", "x:1:nan"})
    EXPECT_THROW(parse_register_spec(bad), Error) << bad;
}

TEST(SensorModbus, DecodesFormats) {
  const uint16_t neg[1] = {0xFFF6};
  RegisterSpec s = parse_register_spec("a:0:i16:0.1");
  EXPECT_DOUBLE_EQ(decode_register(s, neg), -1.0);
  s = parse_register_spec("a:0:u16:0.5:-10");
  EXPECT_DOUBLE_EQ(decode_register(s, neg), 65526 * 0.5 - 10);
  const uint16_t big[2] = {0x0001, 0x0002};
  EXPECT_DOUBLE_EQ(decode_register(parse_register_spec("a:0:u32"), big), 65538.0);
  EXPECT_DOUBLE_EQ(decode_register(parse_register_spec("a:0:u32:swap"), big), 131073.0);
  float f = 3.25f;
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const uint16_t fw[2] = {static_cast<uint16_t>(bits >> 16), static_cast<uint16_t>(bits & 0xFFFF)};
  EXPECT_DOUBLE_EQ(decode_register(parse_register_spec("a:0:f32"), fw), 3.25);
  const uint16_t minus[2] = {0xFFFF, 0xFFFE};
  EXPECT_DOUBLE_EQ(decode_register(parse_register_spec("a:0:i32"), minus), -2.0);
}

TEST(SensorModbus, ReadsConfiguredRegistersFromARealServer) {
  const int port = free_port();
  TestServer server(port);
  server.set_holding(0, static_cast<uint16_t>(-123));  // -12.3 degrees
  server.set_holding(2, 1);
  server.set_holding(3, 5);    // counter 65541
  server.set_holding(5, 100);  // 100 * 0.5 - 10 = 40
  float vib = 2.5f;
  uint32_t bits;
  std::memcpy(&bits, &vib, 4);
  server.set_input(10, static_cast<uint16_t>(bits >> 16));
  server.set_input(11, static_cast<uint16_t>(bits & 0xFFFF));
  ModbusPoller poller(options_for(port));
  const ModbusSample s = poller.read_once();
  ASSERT_EQ(s.values.size(), 4u);
  EXPECT_DOUBLE_EQ(s.values[0], -12.3);
  EXPECT_DOUBLE_EQ(s.values[1], 2.5);
  EXPECT_DOUBLE_EQ(s.values[2], 65541.0);
  EXPECT_DOUBLE_EQ(s.values[3], 40.0);
  EXPECT_GT(s.time, 1.6e9);
  EXPECT_EQ(poller.stats().connects, 1u);
  // Holding registers 0..5 form one request, the input register another. (The
  // server counts a request just after replying, so poll for it.)
  ASSERT_TRUE(wait_until([&] { return server.requests() >= 2; }, 2000))
      << "the server counted " << server.requests() << " requests";
  // And no third one: a short, explicit window in which nothing more may arrive.
  EXPECT_TRUE(holds_for([&] { return server.requests() == 2; }, 50)) << server.requests();
}

TEST(SensorModbus, PollsAtTheConfiguredRate) {
  const int port = free_port();
  TestServer server(port);
  ModbusOptions o = options_for(port);
  o.rate_hz = 20.0;
  ModbusPoller poller(o);
  std::vector<double> times;
  const auto t0 = std::chrono::steady_clock::now();
  poller.run([&](const ModbusSample& s) { times.push_back(s.time); }, 11);
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(times.size(), 11u);
  // 10 periods of 50 ms between the first and last sample.
  EXPECT_NEAR(times.back() - times.front(), 0.5, 0.1);
  EXPECT_LT(elapsed, 1.5);
}

TEST(SensorModbus, ReconnectsWithBackoffAfterTheServerRestarts) {
  const int port = free_port();
  auto server = std::make_unique<TestServer>(port);
  server->set_holding(5, 20);  // humidity 0
  ModbusPoller poller(options_for(port));
  std::mutex m;
  std::vector<double> humidity;
  std::vector<std::string> events;
  std::thread runner([&] {
    poller.run(
        [&](const ModbusSample& s) {
          std::lock_guard lock(m);
          humidity.push_back(s.values[3]);
        },
        0,
        [&](const std::string& e) {
          std::lock_guard lock(m);
          events.push_back(e);
        });
  });
  auto count = [&] {
    std::lock_guard lock(m);
    return humidity.size();
  };
  ASSERT_TRUE(wait_until([&] { return count() >= 5; }, 5000)) << count() << " samples";
  server->stop();  // the device goes away
  // Several failed attempts with back-off (20, 40, 80 ms ...) before the device returns.
  const bool retried = wait_until([&] { return poller.stats().failures >= 3; }, 5000);
  const size_t during_outage = count();
  server->set_holding(5, 40);  // humidity 10 after the restart
  server->start();
  const bool resumed = wait_until([&] { return count() >= during_outage + 5; }, 5000);
  poller.stop();
  runner.join();
  ASSERT_TRUE(retried) << poller.stats().failures << " failed attempts during the outage";
  ASSERT_TRUE(resumed) << count() - during_outage << " samples after the restart";
  const auto stats = poller.stats();
  EXPECT_GE(stats.failures, 2u);
  EXPECT_EQ(stats.connects, 2u);
  EXPECT_GE(count(), during_outage + 5);
  EXPECT_EQ(humidity.front(), 0.0);
  EXPECT_EQ(humidity.back(), 10.0);
  bool saw_retry = false;
  for (const auto& e : events) saw_retry |= e.find("retrying in") != std::string::npos;
  EXPECT_TRUE(saw_retry);
  // An outage of about 3 attempts (20 + 40 + 80 ms of back-off, then the restart): a handful
  // of attempts, not a busy loop.
  EXPECT_LE(stats.failures, 8u);
}

TEST(SensorModbus, BackoffDoublesUpToTheCap) {
  ModbusPoller p(options_for(1502));
  EXPECT_EQ(p.backoff_delay(0), 20ms);
  EXPECT_EQ(p.backoff_delay(1), 40ms);
  EXPECT_EQ(p.backoff_delay(3), 160ms);
  EXPECT_EQ(p.backoff_delay(10), 160ms);
  EXPECT_EQ(p.backoff_delay(1000), 160ms);
}

TEST(SensorModbus, UnreachableDeviceIsAnInternalError) {
  ModbusPoller poller(options_for(free_port()));  // nothing listens there
  try {
    poller.read_once();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::internal);
    EXPECT_NE(std::string(e.what()).find("cannot connect to 127.0.0.1:"), std::string::npos);
  }
  ModbusOptions empty;
  EXPECT_THROW(ModbusPoller{empty}, Error);
}

TEST(SensorModbus, MissingRegisterIsAnErrorNotACrash) {
  const int port = free_port();
  TestServer server(port);
  ModbusOptions o = options_for(port);
  o.registers = {parse_register_spec("far:500")};  // the server maps 0..99 only
  ModbusPoller poller(o);
  EXPECT_THROW(poller.read_once(), Error);
}

TEST(SensorModbus, SinkErrorsEndTheRunInsteadOfBeingRetried) {
  const int port = free_port();
  TestServer server(port);
  ModbusPoller poller(options_for(port));
  size_t calls = 0;
  EXPECT_THROW(poller.run([&](const ModbusSample&) {
    ++calls;
    throw_error(ErrorKind::bad_input, "sink refused the sample");
  }),
               Error);
  EXPECT_EQ(calls, 1u);
  EXPECT_EQ(poller.stats().failures, 0u);
}

// End to end: `mmfuse sensor poll` against the server, scoring live after 40 rows.
TEST(SensorModbus, PollCommandWritesCsvAndScoresLive) {
  // The binary is built with the tests (add_dependencies): missing means a broken build.
  ASSERT_TRUE(std::filesystem::exists(MMFUSE_BINARY))
      << MMFUSE_BINARY << " does not exist: the mmfuse target was not built";
  const int port = free_port();
  TestServer server(port);
  std::atomic<bool> done{false};
  std::thread wiggle([&] {  // changing readings, so no channel is constant
    uint16_t i = 0;
    while (!done) {
      server.set_holding(0, static_cast<uint16_t>(200 + (i * 7919) % 13));
      server.set_holding(1, static_cast<uint16_t>(500 + (i * 104729) % 17));
      ++i;
      std::this_thread::sleep_for(3ms);
    }
  });
  const std::string cmd = std::string(MMFUSE_BINARY) + " sensor poll --port " +
                          std::to_string(port) +
                          " --register temp:0:0.1 --register vib:1 --rate 100 --count 60"
                          " --train-rows 40 --smooth 5 --method t2 2>/dev/null";
  std::FILE* pipe = ::popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int rc = ::pclose(pipe);
  done = true;
  wiggle.join();
  EXPECT_EQ(rc, 0);
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < out.size()) {
    const size_t nl = out.find('\n', start);
    lines.push_back(out.substr(start, nl - start));
    start = nl == std::string::npos ? out.size() : nl + 1;
  }
  ASSERT_EQ(lines.size(), 61u) << out;
  EXPECT_EQ(lines[0], "time,temp,vib,score,anomaly");
  EXPECT_EQ(lines[1].substr(lines[1].size() - 2), ",,");  // training rows: no score yet
  EXPECT_NE(lines[1].find('T'), std::string::npos);       // ISO 8601 time
  const std::string& last = lines[60];
  EXPECT_TRUE(last.back() == '0' || last.back() == '1') << last;
  EXPECT_NE(last.substr(0, last.size() - 2).find_last_of("0123456789"), std::string::npos);
}

}  // namespace
}  // namespace mmfuse::sensor
