// `mmfuse serve` as a class: binds the socket first (so probes can reach
// /healthz at once), loads the models on a background thread (/readyz says 503
// until they are loaded), serves until stop(), and shuts down gracefully:
// stop accepting, finish in-flight requests, drain the batch queues, flush the
// alarm outbox.
// Thread-safety: start/stop/wait from the owning thread; stop() also from a signal thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "server/server_config.h"

namespace mmfuse::server {

class Metrics;

class Server {
 public:
  explicit Server(ServerConfig config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds host:port (port 0 = a free port) and returns the port. Throws
  // Error(bad_input) when the address cannot be bound.
  int bind();
  // Starts serving (background threads) and loading the models.
  void start();
  // Blocks until the models are loaded (true) or loading failed / timed out (false).
  bool wait_ready(std::chrono::milliseconds timeout);
  // Why loading failed ("" if it did not).
  std::string load_error() const;
  // Graceful shutdown; idempotent; returns when everything has stopped.
  void stop();
  // Blocks until the server stopped (after stop() from another thread).
  void wait();

  int port() const;
  Metrics& metrics();
  // "METHOD /pattern" of every documented route (the OpenAPI check in the tests).
  std::vector<std::string> routes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mmfuse::server
