#include "sensor/modbus_source.h"

#include <modbus.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <map>
#include <thread>

#include "mmfuse/error.h"

namespace mmfuse::sensor {
namespace {

bool parse_double(const std::string& s, double& out) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && std::isfinite(out);
}

modbus_t* as_ctx(void* p) {
  return static_cast<modbus_t*>(p);
}

}  // namespace

RegisterSpec parse_register_spec(const std::string& text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t colon = text.find(':', start);
    parts.push_back(text.substr(start, colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  const std::string where = "register '" + text + "'";
  MMFUSE_CHECK(parts.size() >= 2 && !parts[0].empty(), bad_input,
               where + ": expected NAME:ADDRESS[:kind][:format][:swap][:scale[:offset]]");
  RegisterSpec spec;
  spec.name = parts[0];
  const auto [end, ec] =
      std::from_chars(parts[1].data(), parts[1].data() + parts[1].size(), spec.address);
  MMFUSE_CHECK(ec == std::errc() && end == parts[1].data() + parts[1].size() && spec.address >= 0 &&
                   spec.address <= 65535,
               bad_input, where + ": address must be an integer in 0..65535");
  static const std::map<std::string, RegisterFormat> formats = {{"u16", RegisterFormat::u16},
                                                                {"i16", RegisterFormat::i16},
                                                                {"u32", RegisterFormat::u32},
                                                                {"i32", RegisterFormat::i32},
                                                                {"f32", RegisterFormat::f32}};
  int numbers = 0;
  for (size_t i = 2; i < parts.size(); ++i) {
    const std::string& p = parts[i];
    if (p == "holding") {
      spec.kind = RegisterKind::holding;
    } else if (p == "input") {
      spec.kind = RegisterKind::input;
    } else if (formats.count(p)) {
      spec.format = formats.at(p);
    } else if (p == "swap") {
      spec.word_swap = true;
    } else {
      double v;
      MMFUSE_CHECK(parse_double(p, v), bad_input, where + ": unknown field '" + p + "'");
      MMFUSE_CHECK(numbers < 2, bad_input, where + ": at most a scale and an offset");
      (numbers++ == 0 ? spec.scale : spec.offset) = v;
    }
  }
  MMFUSE_CHECK(spec.address + spec.width() - 1 <= 65535, bad_input,
               where + ": register range passes 65535");
  return spec;
}

double decode_register(const RegisterSpec& spec, const uint16_t* words) {
  double raw = 0.0;
  const uint32_t hi = spec.word_swap ? words[1] : words[0];
  const uint32_t lo = spec.word_swap ? words[0] : (spec.width() == 2 ? words[1] : 0);
  const uint32_t both = (hi << 16) | lo;
  switch (spec.format) {
    case RegisterFormat::u16: raw = words[0]; break;
    case RegisterFormat::i16: raw = static_cast<int16_t>(words[0]); break;
    case RegisterFormat::u32: raw = both; break;
    case RegisterFormat::i32: raw = static_cast<int32_t>(both); break;
    case RegisterFormat::f32: {
      float f;
      std::memcpy(&f, &both, sizeof f);
      raw = f;
      break;
    }
  }
  return raw * spec.scale + spec.offset;
}

ModbusPoller::ModbusPoller(ModbusOptions options) : options_(std::move(options)) {
  MMFUSE_CHECK(!options_.registers.empty(), bad_input, "Modbus: no registers configured");
  MMFUSE_CHECK(options_.rate_hz > 0.0 && options_.rate_hz <= 1000.0, bad_input,
               "Modbus: rate must be in (0, 1000] Hz");
  MMFUSE_CHECK(options_.port > 0 && options_.port <= 65535, bad_input,
               "Modbus: port must be in 1..65535");
  MMFUSE_CHECK(options_.unit_id >= 0 && options_.unit_id <= 247, bad_input,
               "Modbus: unit id must be in 0..247");
  MMFUSE_CHECK(
      options_.backoff_initial.count() > 0 && options_.backoff_max >= options_.backoff_initial,
      bad_input, "Modbus: back-off must be positive and max >= initial");
  // Group registers of one kind into requests of at most 125 words (the
  // protocol's limit), bridging gaps of up to 8 unused registers.
  for (RegisterKind kind : {RegisterKind::holding, RegisterKind::input}) {
    std::vector<std::pair<int, int>> spans;
    for (const auto& r : options_.registers)
      if (r.kind == kind) spans.push_back({r.address, r.address + r.width()});
    std::sort(spans.begin(), spans.end());
    for (const auto& [a, b] : spans) {
      if (!blocks_.empty() && blocks_.back().kind == kind &&
          a <= blocks_.back().start + blocks_.back().count + 8 &&
          std::max(b, blocks_.back().start + blocks_.back().count) - blocks_.back().start <= 125) {
        blocks_.back().count =
            std::max(b, blocks_.back().start + blocks_.back().count) - blocks_.back().start;
      } else {
        blocks_.push_back({kind, a, b - a});
      }
    }
  }
}

ModbusPoller::~ModbusPoller() {
  disconnect();
}

void ModbusPoller::connect() {
  if (ctx_ != nullptr) return;
  modbus_t* ctx = modbus_new_tcp(options_.host.c_str(), options_.port);
  MMFUSE_CHECK(ctx != nullptr, internal,
               "Modbus: cannot create a context for " + options_.host + ":" +
                   std::to_string(options_.port) + ": " + modbus_strerror(errno));
  const auto ms = options_.response_timeout.count();
  modbus_set_response_timeout(ctx, static_cast<uint32_t>(ms / 1000),
                              static_cast<uint32_t>((ms % 1000) * 1000));
  modbus_set_slave(ctx, options_.unit_id);
  if (modbus_connect(ctx) == -1) {
    const std::string why = modbus_strerror(errno);
    modbus_free(ctx);
    throw_error(ErrorKind::internal, "Modbus: cannot connect to " + options_.host + ":" +
                                         std::to_string(options_.port) + ": " + why);
  }
  ctx_ = ctx;
  std::lock_guard lock(mutex_);
  ++stats_.connects;
}

void ModbusPoller::disconnect() {
  if (ctx_ == nullptr) return;
  modbus_close(as_ctx(ctx_));
  modbus_free(as_ctx(ctx_));
  ctx_ = nullptr;
}

ModbusSample ModbusPoller::read_once() {
  connect();
  std::map<std::pair<int, int>, uint16_t> words;  // (kind, address) -> word
  std::vector<uint16_t> buf(125);
  for (const auto& b : blocks_) {
    const int n = b.kind == RegisterKind::holding
                      ? modbus_read_registers(as_ctx(ctx_), b.start, b.count, buf.data())
                      : modbus_read_input_registers(as_ctx(ctx_), b.start, b.count, buf.data());
    if (n != b.count) {
      const std::string why = n < 0 ? modbus_strerror(errno) : "short reply";
      disconnect();
      throw_error(ErrorKind::internal, "Modbus: reading " + std::to_string(b.count) +
                                           " registers at " + std::to_string(b.start) + " from " +
                                           options_.host + ":" + std::to_string(options_.port) +
                                           " failed: " + why);
    }
    for (int i = 0; i < n; ++i)
      words[{static_cast<int>(b.kind), b.start + i}] = buf[static_cast<size_t>(i)];
  }
  ModbusSample sample;
  sample.time =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  for (const auto& r : options_.registers) {
    uint16_t w[2] = {0, 0};
    for (int i = 0; i < r.width(); ++i) w[i] = words.at({static_cast<int>(r.kind), r.address + i});
    sample.values.push_back(decode_register(r, w));
  }
  return sample;
}

std::chrono::milliseconds ModbusPoller::backoff_delay(size_t attempt) const {
  auto d = options_.backoff_initial;
  for (size_t i = 0; i < attempt && d < options_.backoff_max; ++i) d *= 2;
  return std::min(d, options_.backoff_max);
}

bool ModbusPoller::sleep_until(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  wake_.wait_until(lock, deadline, [&] { return stop_.load(); });
  return !stop_.load();
}

void ModbusPoller::stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
}

ModbusPoller::Stats ModbusPoller::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void ModbusPoller::run(const std::function<void(const ModbusSample&)>& sink, size_t max_samples,
                       const std::function<void(const std::string&)>& on_event) {
  using clock = std::chrono::steady_clock;
  const auto period = std::chrono::duration_cast<clock::duration>(
      std::chrono::duration<double>(1.0 / options_.rate_hz));
  auto next = clock::now();
  size_t failed_attempts = 0;
  size_t delivered = 0;
  while (!stop_.load() && (max_samples == 0 || delivered < max_samples)) {
    // Only device failures are retried; an exception from the sink is the
    // caller's and ends run().
    ModbusSample sample;
    const bool was_connected = ctx_ != nullptr;
    try {
      sample = read_once();
    } catch (const Error& e) {
      {
        std::lock_guard lock(mutex_);
        ++stats_.failures;
      }
      const auto delay = backoff_delay(failed_attempts++);
      if (on_event)
        on_event(std::string(e.what()) + "; retrying in " + std::to_string(delay.count()) + " ms");
      if (!sleep_until(clock::now() + delay)) break;
      next = clock::now();
      continue;
    }
    if (!was_connected && on_event)
      on_event("connected to " + options_.host + ":" + std::to_string(options_.port));
    failed_attempts = 0;
    const bool finite = std::all_of(sample.values.begin(), sample.values.end(),
                                    [](double v) { return std::isfinite(v); });
    {
      std::lock_guard lock(mutex_);
      if (finite)
        ++stats_.samples;
      else
        ++stats_.bad_values;
    }
    if (finite) {
      sink(sample);
      ++delivered;
    } else if (on_event) {
      on_event("sample dropped: a register decoded to a non-finite value");
    }
    // Fixed-rate schedule; after a stall, restart it rather than burst.
    next += period;
    const auto now = clock::now();
    if (next < now) next = now;
    if (!sleep_until(next)) break;
  }
}

}  // namespace mmfuse::sensor
