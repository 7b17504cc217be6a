// Server: cpp-httplib wiring (thread pool, limits, timeouts, CORS, auth, JSON
// errors, metrics logger), background model loading, graceful shutdown.
#include "server/server.h"

#include <sys/socket.h>

#include <condition_variable>
#include <cstdio>
#include <thread>

#include "index/content_hash.h"
#include "index/index_model.h"
#include "index/index_store.h"
#include "mmfuse/error.h"
#include "models/registry.h"
#include "server/http_util.h"
#include "server/index_replica.h"
#include "server/plant_service.h"
#include "server/server_context.h"

namespace mmfuse::server {

namespace {

thread_local std::chrono::steady_clock::time_point t_request_start{};

bool path_is_protected(const std::string& path) {
  return path.rfind("/v1/", 0) == 0;
}

}  // namespace

struct Server::Impl {
  explicit Impl(ServerConfig config) : ctx(std::move(config)) {}

  ServerContext ctx;
  httplib::Server http;
  std::thread listener, loader;
  int port = -1;
  bool started = false;
  std::mutex stop_mutex;
  std::condition_variable stopped_cv;
  bool stopped = false;
  std::atomic<bool> stopping{false};

  void configure();
  void load();
  void register_generation_metrics();
  const std::string* allowed_origin(const httplib::Request& req) const;
};

const std::string* Server::Impl::allowed_origin(const httplib::Request& req) const {
  if (ctx.config.cors_origins.empty() || !req.has_header("Origin")) return nullptr;
  static thread_local std::string origin;
  origin = req.get_header_value("Origin");
  for (const auto& o : ctx.config.cors_origins)
    if (o == "*" || o == origin) return &origin;
  return nullptr;
}

void Server::Impl::configure() {
  const ServerConfig& c = ctx.config;
  const size_t http_threads = static_cast<size_t>(c.http_threads);
  http.new_task_queue = [http_threads] { return new httplib::ThreadPool(http_threads); };
  // SO_REUSEADDR only: httplib's default SO_REUSEPORT would let a second server
  // bind the same port and silently take half of the connections.
  http.set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  http.set_payload_max_length(c.limits.max_body_bytes);
  http.set_read_timeout(c.limits.request_timeout_s, 0);
  http.set_write_timeout(c.limits.request_timeout_s, 0);
  http.set_keep_alive_max_count(100000);
  http.set_keep_alive_timeout(5);

  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    t_request_start = std::chrono::steady_clock::now();
    set_current_route(ctx, req);  // labels requests answered here (401, 403, preflight)
    if (const std::string* origin = allowed_origin(req)) {
      res.set_header("Access-Control-Allow-Origin", *origin);
      res.set_header("Vary", "Origin");
      if (req.method == "OPTIONS") {
        res.set_header("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
        res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
        res.set_header("Access-Control-Max-Age", "600");
        res.status = 204;
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    if (ctx.keys.enabled() && path_is_protected(req.path)) {
      switch (ctx.keys.check(req.get_header_value("Authorization"))) {
        case AuthResult::ok: break;
        case AuthResult::missing:
          res.set_header("WWW-Authenticate", "Bearer");
          send_error(res, 401, "unauthorized", "missing API key: send Authorization: Bearer <key>");
          return httplib::Server::HandlerResponse::Handled;
        case AuthResult::wrong:
          send_error(res, 403, "forbidden", "the API key is not valid");
          return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  // Every 4xx/5xx without a body (unknown route, 413 from the body limit, ...) gets the JSON shape.
  http.set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        if (res.status == 404 || res.status == 400) {
          if (reject_method(ctx, req, res)) return httplib::Server::HandlerResponse::Handled;
          if (res.status == 404)
            send_error(res, 404, "not_found", "no route for " + req.method + " " + req.path);
        } else if (res.status == 413) {
          send_error(res, 413, "too_large",
                     "request body over the limit of " +
                         std::to_string(ctx.config.limits.max_body_bytes) + " bytes");
        }
        if (res.body.empty()) {
          send_error(res, res.status, error_type_for_status(res.status),
                     res.status == 400
                         ? "malformed HTTP request (headers or body could not be read)"
                         : "request failed with HTTP status " + std::to_string(res.status));
        }
        return httplib::Server::HandlerResponse::Handled;
      }));

  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        try {
          std::rethrow_exception(ep);
        } catch (...) {
          send_current_exception(res);
        }
      });

  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    const auto now = std::chrono::steady_clock::now();
    const double seconds = t_request_start == std::chrono::steady_clock::time_point{}
                               ? 0.0
                               : std::chrono::duration<double>(now - t_request_start).count();
    const std::string& route = current_route();
    ctx.metrics.observe_request(req.method, route.empty() ? "unmatched" : route, res.status,
                                seconds);
    t_request_start = {};
  });

  add_core_routes(http, ctx);
  add_embedding_routes(http, ctx);
  add_chat_routes(http, ctx);
  add_index_routes(http, ctx);
  add_plant_routes(http, ctx);
  add_detect_routes(http, ctx);
  add_file_routes(http, ctx);
}

void Server::Impl::load() {
  try {
    for (const auto& spec : ctx.config.models) {
      auto m = std::make_unique<LoadedModel>();
      m->name = spec.name;
      m->dir = spec.dir;
      m->fingerprint = model_fingerprint(spec.dir);
      m->architecture = &architecture_of(spec.dir);
      m->model = open_dual_encoder(spec.dir, ctx.pool, spec.precision);
      m->scheduler = std::make_unique<EmbedScheduler>(spec.name, *m->model, ctx.config.batching,
                                                      ctx.metrics, ctx.inference_lock);
      ctx.models.push_back(std::move(m));
    }
    for (const auto& spec : ctx.config.generative_models) {
      auto m = std::make_unique<LoadedGenerativeModel>();
      m->spec = spec;
      m->model = open_generative_model(spec.dir, ctx.pool, {}, spec.precision);
      for (const auto& [name, dir] : spec.adapters)
        m->adapters.emplace_back(name, m->model->load_adapter(dir));
      BatchScheduler::Options options;
      options.max_running = spec.max_running;
      options.max_queued = spec.max_queued;
      m->scheduler = std::make_unique<BatchScheduler>(options);
      ctx.generative_models.push_back(std::move(m));
    }
    for (const auto& spec : ctx.config.detectors) {
      auto d = std::make_unique<LoadedDetector>();
      d->name = spec.name;
      d->file = spec.model;
      d->model = YoloDetector::open(spec.model, {ctx.pool});
      ctx.detectors.push_back(std::move(d));
    }
    if (!ctx.generative_models.empty()) register_generation_metrics();
    std::unique_ptr<IndexStore> store;
    if (ctx.index_replica)
      store = ctx.index_replica->open();  // null until the writer first publishes
    else if (!ctx.config.index_dir.empty() &&
             std::filesystem::exists(ctx.config.index_dir + "/catalog.sqlite"))
      store = IndexStore::open_read(ctx.config.index_dir);
    if (store) {
      // Queries must be embedded by the model that built the index.
      const IndexSettings& s = store->settings();
      if (!ctx.model_by_fingerprint(s.model_id)) {
        // Not among the served models: load the one recorded in the index (checked by fingerprint).
        auto m = std::make_unique<LoadedModel>();
        m->name = s.model_name;
        for (const auto& other : ctx.models)
          if (other->name == m->name) m->name = "index-model";
        m->dir = s.model_path;
        m->fingerprint = s.model_id;
        m->model = load_index_model(s, ctx.config.index_dir, "", ctx.pool);
        m->architecture = &architecture_of(m->dir);
        m->scheduler = std::make_unique<EmbedScheduler>(m->name, *m->model, ctx.config.batching,
                                                        ctx.metrics, ctx.inference_lock);
        ctx.models.push_back(std::move(m));
      }
    }
    if (ctx.plant) {
      std::lock_guard<std::mutex> cores(
          ctx.inference_lock);  // baselines are fitted on the shared pool
      ctx.plant->start(ctx.metrics);
    }
    ctx.ready = true;
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lock(ctx.load_mutex);
    ctx.load_error = e.what();
    ctx.load_failed = true;
  }
}

// Running / queued sequences and the decode rate of each generative model, read
// from its scheduler at scrape time (the loader fills the list before `ready`).
void Server::Impl::register_generation_metrics() {
  using Rows = std::vector<std::pair<std::string, double>>;
  auto per_model = [this](double (*value)(const BatchScheduler::Stats&)) {
    return [this, value] {
      Rows rows;
      if (!ctx.ready) return rows;
      for (const auto& m : ctx.generative_models)
        if (m->scheduler)  // null after stop()
          rows.emplace_back("model=\"" + escape_label(m->spec.name) + "\"",
                            value(m->scheduler->stats()));
      return rows;
    };
  };
  ctx.metrics.add_sampled(
      "mmfuse_generation_running_sequences", "gauge",
      "Sequences being decoded together per generative model.",
      per_model([](const BatchScheduler::Stats& s) { return double(s.running); }));
  ctx.metrics.add_sampled(
      "mmfuse_generation_queued_requests", "gauge",
      "Generation requests waiting for a place in the batch.",
      per_model([](const BatchScheduler::Stats& s) { return double(s.queued); }));
  ctx.metrics.add_sampled(
      "mmfuse_generation_decode_tokens_per_second", "gauge",
      "Tokens generated per second over the scheduler's recent decode steps.",
      per_model([](const BatchScheduler::Stats& s) { return s.decode_tokens_per_s; }));
}

Server::Server(ServerConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {
  validate_server_config(impl_->ctx.config);
  ServerConfig& c = impl_->ctx.config;
  if (!c.plant_file.empty() || !c.data_dir.empty() || !c.store_url.empty()) {
    impl_->ctx.plant = std::make_unique<PlantService>(c, impl_->ctx.pool);
    if (c.data_dir.empty() && !impl_->ctx.plant->data_dir().empty())
      c.data_dir = impl_->ctx.plant->data_dir().string();  // evidence at DATA/evidence
  }
  if (c.index_read_only) {
    impl_->ctx.index_replica =
        std::make_unique<IndexReplica>(c.index_dir, std::chrono::milliseconds(c.index_poll_ms));
    IndexReplica* replica = impl_->ctx.index_replica.get();
    impl_->ctx.metrics.add_sampled(
        "mmfuse_index_generation", "gauge",
        "Index generation this read replica searches (-1: none published yet).", [replica] {
          return std::vector<std::pair<std::string, double>>{{"", double(replica->generation())}};
        });
  }
  impl_->configure();
}

Server::~Server() {
  stop();
}

int Server::bind() {
  const ServerConfig& c = impl_->ctx.config;
  if (c.port == 0) {
    impl_->port = impl_->http.bind_to_any_port(c.host);
  } else {
    impl_->port = impl_->http.bind_to_port(c.host, c.port) ? c.port : -1;
  }
  if (impl_->port < 0)
    throw_error(ErrorKind::bad_input, "cannot listen on " + c.host + ":" + std::to_string(c.port) +
                                          " (address in use or not local)");
  return impl_->port;
}

void Server::start() {
  if (impl_->port < 0) bind();
  impl_->started = true;
  impl_->listener = std::thread([this] { impl_->http.listen_after_bind(); });
  // stop() only takes effect once the listener runs.
  for (int i = 0; i < 5000 && !impl_->http.is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  impl_->loader = std::thread([this] { impl_->load(); });
}

bool Server::wait_ready(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (impl_->ctx.ready) return true;
    if (impl_->ctx.load_failed || impl_->stopping) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return impl_->ctx.ready;
}

std::string Server::load_error() const {
  std::lock_guard<std::mutex> lock(impl_->ctx.load_mutex);
  return impl_->ctx.load_error;
}

void Server::stop() {
  {
    std::lock_guard<std::mutex> lock(impl_->stop_mutex);
    if (impl_->stopped) return;
  }
  impl_->stopping = true;
  if (impl_->started) {
    impl_->http.stop();
    // stop accepting; the listener joins its workers (in-flight requests finish)
    if (impl_->listener.joinable()) impl_->listener.join();
    if (impl_->loader.joinable()) impl_->loader.join();
  }
  for (auto& m : impl_->ctx.models) m->scheduler->stop();
  // In-flight requests have finished (the listener joined its workers); this
  // cancels nothing that a client still waits for.
  for (auto& m : impl_->ctx.generative_models) m->scheduler.reset();
  if (impl_->ctx.plant) impl_->ctx.plant->stop();                  // flush the alarm outbox
  if (impl_->ctx.index_replica) impl_->ctx.index_replica.reset();  // stops its watcher
  {
    std::lock_guard<std::mutex> lock(impl_->stop_mutex);
    impl_->stopped = true;
  }
  impl_->stopped_cv.notify_all();
}

void Server::wait() {
  std::unique_lock<std::mutex> lock(impl_->stop_mutex);
  impl_->stopped_cv.wait(lock, [&] { return impl_->stopped; });
}

int Server::port() const {
  return impl_->port;
}

Metrics& Server::metrics() {
  return impl_->ctx.metrics;
}

std::vector<std::string> Server::routes() const {
  std::vector<std::string> out;
  for (const auto& r : impl_->ctx.routes)
    if (r.documented) out.push_back(r.method + " " + r.pattern);
  return out;
}

}  // namespace mmfuse::server
