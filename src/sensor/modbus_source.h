// Live sensor rows from a Modbus TCP device (libmodbus): configured holding or
// input registers are read at a fixed rate (10 Hz by default, the chapter's
// sampling rate) and turned into engineering values, value = raw * scale +
// offset. When the device drops or times out, the connection is closed and
// re-opened after an exponential back-off (initial, doubling, capped), so a
// device restart costs a gap in the samples, never the poller.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace mmfuse::sensor {

enum class RegisterKind { holding, input };
// 32-bit formats span two registers, high word first unless word_swap.
enum class RegisterFormat { u16, i16, u32, i32, f32 };

struct RegisterSpec {
  std::string name;
  int address = 0;  // 0-based protocol address
  RegisterKind kind = RegisterKind::holding;
  RegisterFormat format = RegisterFormat::u16;
  bool word_swap = false;
  double scale = 1.0;
  double offset = 0.0;
  int width() const {
    return format == RegisterFormat::u16 || format == RegisterFormat::i16 ? 1 : 2;
  }
};

// Parses "NAME:ADDRESS[:holding|input][:u16|i16|u32|i32|f32][:swap][:SCALE[:OFFSET]]",
// e.g. "temperature:0:i16:0.1" or "flow:10:input:f32". Throws ErrorKind::bad_input.
RegisterSpec parse_register_spec(const std::string& text);

// Engineering value of a register from its raw words (width() of them).
double decode_register(const RegisterSpec& spec, const uint16_t* words);

struct ModbusOptions {
  std::string host = "127.0.0.1";
  int port = 502;
  int unit_id = 1;
  double rate_hz = 10.0;
  std::chrono::milliseconds response_timeout{500};
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{5000};
  std::vector<RegisterSpec> registers;
};

struct ModbusSample {
  double time = 0.0;           // seconds since the Unix epoch (system clock)
  std::vector<double> values;  // one per register, in configuration order
};

class ModbusPoller {
 public:
  struct Stats {
    size_t samples = 0;     // rows delivered
    size_t failures = 0;    // failed connects or reads
    size_t connects = 0;    // successful connections (the first one included)
    size_t bad_values = 0;  // samples dropped for a non-finite (f32) value
  };

  // Throws ErrorKind::bad_input for an empty or invalid configuration.
  explicit ModbusPoller(ModbusOptions options);
  ~ModbusPoller();
  ModbusPoller(const ModbusPoller&) = delete;
  ModbusPoller& operator=(const ModbusPoller&) = delete;

  // Reads every register once, connecting first if needed. On failure closes
  // the connection and throws ErrorKind::internal (device unreachable or error).
  ModbusSample read_once();

  // Polls at rate_hz, calling sink for each sample, until stop() or until
  // max_samples (0 = no limit) were delivered. Device failures reconnect with
  // back-off; an exception thrown by the sink propagates out of run().
  // `on_event` (optional) receives one line per connection event.
  // Once stop() was called, run() returns at once.
  void run(const std::function<void(const ModbusSample&)>& sink, size_t max_samples = 0,
           const std::function<void(const std::string&)>& on_event = nullptr);

  // Makes run() return soon; safe from any thread (and from the sink).
  void stop();
  Stats stats() const;

  // The back-off before reconnect attempt `attempt` (0-based): initial * 2^attempt, capped.
  std::chrono::milliseconds backoff_delay(size_t attempt) const;

 private:
  void connect();
  void disconnect();
  // Sleeps until `deadline` or stop(); false when stopped.
  bool sleep_until(std::chrono::steady_clock::time_point deadline);

  struct Block {  // one read request covering consecutive registers
    RegisterKind kind;
    int start, count;
  };
  ModbusOptions options_;
  std::vector<Block> blocks_;
  void* ctx_ = nullptr;  // modbus_t*, kept out of this header
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  Stats stats_;
};

}  // namespace mmfuse::sensor
