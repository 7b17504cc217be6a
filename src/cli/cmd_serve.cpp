// `mmfuse serve`: the HTTP API (see docs/api.md). Flags override the config
// file; SIGTERM/SIGINT shut down gracefully (stop accepting, finish in-flight
// requests, drain batch queues, flush the alarm outbox).
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <thread>

#include "cli/commands.h"
#include "cli/common.h"
#include "mmfuse/error.h"
#include "models/registry.h"
#include "server/server.h"
#include "server/server_config.h"
#include "store/store.h"

namespace fs = std::filesystem;

namespace mmfuse::cli {

namespace {

// The dashboard next to the binary (build tree or install prefix), else ./web/dist.
std::string default_static_root() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  std::vector<fs::path> candidates;
  if (!ec) {
    candidates.push_back(exe.parent_path() / "../web/dist");
    candidates.push_back(exe.parent_path() / "../share/mmfuse/web");
  }
  candidates.push_back("web/dist");
  for (const auto& c : candidates)
    if (fs::exists(c / "index.html", ec)) return fs::weakly_canonical(c).string();
  return "";
}

}  // namespace

void register_serve(CLI::App& app) {
  struct Options {
    std::string config, model, model_name, host, index, plant, data, store, static_root,
        evidence_root, keys_file;
    std::vector<std::string> api_keys, cors, adapters;
    int64_t max_running = -1, max_queued = -1;
    bool allow_remote_images = false, index_read_only = false, index_publish = false;
    int port = -1, threads = -1, http_threads = -1, max_wait_ms = -1, timeout_s = -1;
    int64_t max_batch = -1, queue_size = -1, max_body = -1, max_pixels = -1;
    bool no_batching = false, check = false;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd =
      app.add_subcommand("serve", "Serve the HTTP API (embeddings, search, plant dashboard)");
  cmd->add_option("--config", opt->config, "YAML config file (see docs/api.md)");
  cmd->add_option("--model", opt->model,
                  "Model folder to serve (without a config file); an Ultralytics .onnx "
                  "export is served by /v1/detect");
  cmd->add_option("--model-name", opt->model_name,
                  "Name clients use for --model (default: folder name)");
  cmd->add_option("--adapter", opt->adapters,
                  "LoRA adapter of a generative --model: NAME=DIR, requested as "
                  "\"model+NAME\" (repeatable)");
  cmd->add_option("--max-running", opt->max_running,
                  "Generative --model: sequences decoded together (default 8)")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--max-queued", opt->max_queued,
                  "Generative --model: requests waiting before 503 (default 64)")
      ->check(CLI::Range(0, 1000000));
  cmd->add_flag("--allow-remote-images", opt->allow_remote_images,
                "Generative --model: accept http(s):// and file:// image URLs");
  cmd->add_option("--host", opt->host, "Address to listen on (default 127.0.0.1)");
  cmd->add_option("--port", opt->port, "Port (default 8080; 0 = any free port)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--threads", opt->threads, "Inference cores (default: all)")
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--http-threads", opt->http_threads, "Connections served at once (default 64)")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--index", opt->index,
                  "Retrieval index folder for /v1/search and /v1/index/items");
  cmd->add_flag("--index-read-only", opt->index_read_only,
                "Serve the index as a read replica: search what the writer published under "
                "INDEX/published, switch to newer generations as they appear, refuse writes");
  cmd->add_flag("--index-publish", opt->index_publish,
                "Publish each written generation to INDEX/published for read replicas");
  cmd->add_option("--plant", opt->plant, "Plant file for the inspection routes");
  cmd->add_option("--data", opt->data, "Plant data folder (store and evidence)");
  add_store_option(cmd, &opt->store);
  cmd->add_option("--static-root", opt->static_root,
                  "Dashboard files served at / (default: web/dist)");
  cmd->add_option("--evidence-root", opt->evidence_root,
                  "Evidence files served at /evidence/ (default DATA/evidence)");
  cmd->add_option("--api-key", opt->api_keys, "API key clients must send as Bearer (repeatable)");
  cmd->add_option("--api-keys-file", opt->keys_file, "File of API keys, one per line");
  cmd->add_option("--cors-origin", opt->cors,
                  "Allowed CORS origin (repeatable; default: CORS off)");
  cmd->add_option("--max-batch", opt->max_batch, "Inputs per model call (default 32)")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--max-wait-ms", opt->max_wait_ms, "Wait for a batch to fill (default 5)")
      ->check(CLI::Range(0, 10000));
  cmd->add_option("--queue-size", opt->queue_size,
                  "Requests waiting per model before 503 (default 256)")
      ->check(CLI::Range(1, 1000000));
  cmd->add_flag("--no-batching", opt->no_batching, "Run each request alone (no merging)");
  cmd->add_flag("--check", opt->check, "Validate the configuration, print it as JSON and exit");
  cmd->add_option("--max-body-bytes", opt->max_body, "Request body limit (default 32 MiB)")
      ->check(CLI::Range(int64_t{1024}, int64_t{1} << 34));
  cmd->add_option("--max-image-pixels", opt->max_pixels, "Image pixel limit (default 40 M)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 32));
  cmd->add_option("--request-timeout", opt->timeout_s, "Seconds per request (default 30)")
      ->check(CLI::Range(1, 3600));
  cmd->callback([opt] {
    MMFUSE_CHECK(
        !opt->config.empty() || !opt->model.empty() || !opt->plant.empty() || !opt->data.empty() ||
            !opt->store.empty(),
        bad_input, "serve: give --config FILE or --model DIR");
    server::ServerConfig c;
    if (!opt->config.empty()) c = server::load_server_config(opt->config);
    if (!opt->model.empty()) {
      std::string name = opt->model_name;
      if (name.empty()) name = fs::path(opt->model).lexically_normal().filename().string();
      if (name.empty())
        name = fs::path(opt->model).lexically_normal().parent_path().filename().string();
      // A folder the registry can generate with is served by the chat routes; any
      // other (or an unreadable one, reported when loading) as an embedding model.
      bool generative = false, detector = false;
      std::error_code ec;
      if (fs::is_regular_file(opt->model, ec) && fs::path(opt->model).extension() == ".onnx") {
        detector = true;
        name = opt->model_name.empty() ? fs::path(opt->model).stem().string() : opt->model_name;
      } else try {
        generative = architecture_of(opt->model).can(Capability::generate);
      } catch (const Error&) {
      }
      if (detector) {
        MMFUSE_CHECK(opt->adapters.empty(), bad_input,
                     "--adapter: " + opt->model + " is not a generative model");
        c.detectors.insert(c.detectors.begin(), {name, opt->model});
      } else if (generative) {
        server::GenerativeModelSpec spec;
        spec.name = name;
        spec.dir = opt->model;
        for (const auto& a : opt->adapters) {
          const auto eq = a.find('=');
          MMFUSE_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < a.size(), bad_input,
                       "--adapter: expected NAME=DIR, got \"" + a + "\"");
          spec.adapters.emplace_back(a.substr(0, eq), a.substr(eq + 1));
        }
        if (opt->max_running > 0) spec.max_running = static_cast<size_t>(opt->max_running);
        if (opt->max_queued >= 0) spec.max_queued = static_cast<size_t>(opt->max_queued);
        spec.allow_remote_images = opt->allow_remote_images;
        c.generative_models.insert(c.generative_models.begin(), std::move(spec));
      } else {
        MMFUSE_CHECK(opt->adapters.empty(), bad_input,
                     "--adapter: " + opt->model + " is not a generative model");
        c.models.insert(c.models.begin(), {name, opt->model});
      }
    }
    if (!opt->host.empty()) c.host = opt->host;
    if (opt->port >= 0) c.port = opt->port;
    if (opt->threads >= 0) c.threads = opt->threads;
    if (opt->http_threads > 0) c.http_threads = opt->http_threads;
    if (!opt->index.empty()) c.index_dir = opt->index;
    if (opt->index_read_only) c.index_read_only = true;
    if (opt->index_publish) c.index_publish = true;
    if (!opt->plant.empty()) c.plant_file = opt->plant;
    if (!opt->data.empty()) c.data_dir = opt->data;
    if (!opt->store.empty()) c.store_url = opt->store;
    // $MMFUSE_STORE unless --data asks for SQLite (a config's data_dir still holds evidence).
    if (c.store_url.empty()) c.store_url = store_url_or_env("", !opt->data.empty());
    if (!opt->static_root.empty()) c.static_root = opt->static_root;
    if (!opt->evidence_root.empty()) c.evidence_root = opt->evidence_root;
    for (const auto& k : opt->api_keys) {
      MMFUSE_CHECK(k.size() >= 8, bad_input, "--api-key: a key must have at least 8 characters");
      c.api_keys.push_back(k);
    }
    if (!opt->keys_file.empty())
      for (auto& k : server::read_api_key_file(opt->keys_file)) c.api_keys.push_back(std::move(k));
    for (const auto& o : opt->cors) c.cors_origins.push_back(o);
    if (opt->max_batch > 0) c.batching.max_batch = static_cast<size_t>(opt->max_batch);
    if (opt->max_wait_ms >= 0) c.batching.max_wait_ms = opt->max_wait_ms;
    if (opt->queue_size > 0) c.batching.queue_size = static_cast<size_t>(opt->queue_size);
    if (opt->no_batching) c.batching.enabled = false;
    if (opt->max_body > 0) c.limits.max_body_bytes = static_cast<size_t>(opt->max_body);
    if (opt->max_pixels > 0) c.limits.max_image_pixels = opt->max_pixels;
    if (opt->timeout_s > 0) c.limits.request_timeout_s = opt->timeout_s;
    if (c.static_root.empty()) c.static_root = default_static_root();
    server::validate_server_config(c);
    if (opt->check) {
      Json models = Json::object();
      for (const auto& m : c.models) models[m.name] = m.dir;
      Json generative = Json::object();
      for (const auto& m : c.generative_models) {
        Json adapters = Json::object();
        for (const auto& [a, dir] : m.adapters) adapters[a] = dir;
        generative[m.name] = {{"path", m.dir},
                              {"adapters", adapters},
                              {"max_running", m.max_running},
                              {"max_queued", m.max_queued},
                              {"allow_remote_images", m.allow_remote_images}};
      }
      Json detectors = Json::object();
      for (const auto& d : c.detectors) detectors[d.name] = d.model;
      print_json({{"ok", true},
                  {"host", c.host},
                  {"port", c.port},
                  {"models", models},
                  {"generative_models", generative},
                  {"detectors", detectors},
                  {"index", c.index_dir},
                  {"index_read_only", c.index_read_only},
                  {"index_publish", c.index_publish},
                  {"plant", c.plant_file},
                  {"data_dir", c.data_dir},
                  {"store", store::redact_store_url(c.store_url)},
                  {"static_root", c.static_root},
                  {"evidence_root", c.evidence_root},
                  {"batching",
                   {{"enabled", c.batching.enabled},
                    {"max_batch", c.batching.max_batch},
                    {"max_wait_ms", c.batching.max_wait_ms},
                    {"queue_size", c.batching.queue_size}}},
                  {"limits",
                   {{"max_body_bytes", c.limits.max_body_bytes},
                    {"max_image_pixels", c.limits.max_image_pixels},
                    {"request_timeout_s", c.limits.request_timeout_s}}},
                  {"auth", !c.api_keys.empty()},
                  {"cors_origins", c.cors_origins}});
      return;
    }

    // Signals are taken by sigwait below; every thread started from here inherits the mask.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    server::Server srv(c);
    const int port = srv.bind();
    srv.start();
    std::fprintf(stderr, "mmfuse serve: listening on http://%s:%d (loading models)\n",
                 c.host.c_str(), port);
    print_json({{"listening", "http://" + c.host + ":" + std::to_string(port)}, {"port", port}});
    bool load_failed = false;
    // To the main thread itself: a signal sent to the process may be handed to a
    // thread started before the mask above (a library's), whose default action
    // would end the process with SIGTERM instead of exit 2.
    const pthread_t main_thread = pthread_self();
    std::thread watcher([&] {
      if (srv.wait_ready(std::chrono::hours(24 * 365))) {
        std::fprintf(stderr, "mmfuse serve: ready\n");
      } else {
        load_failed = !srv.load_error().empty();
        if (load_failed) pthread_kill(main_thread, SIGTERM);
      }
    });
    int sig = 0;
    sigwait(&signals, &sig);
    std::fprintf(stderr, "mmfuse serve: %s, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    srv.stop();
    watcher.join();
    if (load_failed) throw_error(ErrorKind::bad_input, "serve: " + srv.load_error());
    std::fprintf(stderr, "mmfuse serve: stopped\n");
  });
}

}  // namespace mmfuse::cli
