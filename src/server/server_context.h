// The state every route handler shares: configuration, metrics, loaded models
// with their batch schedulers, readiness, and the route table (used for 405s,
// metrics labels and the OpenAPI check). Internal to src/server.
#pragma once

#include <httplib.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <vector>

#include "generate/batch_scheduler.h"
#include "models/dual_encoder.h"
#include "models/generative_model.h"
#include "models/registry.h"
#include "models/yolo.h"
#include "server/auth.h"
#include "server/embed_scheduler.h"
#include "server/metrics.h"
#include "server/server_config.h"

namespace mmfuse::server {

class PlantService;
class IndexReplica;

struct LoadedModel {
  std::string name, dir, fingerprint;
  const Architecture* architecture = nullptr;  // the registry's entry for its config.json
  std::unique_ptr<DualEncoder> model;
  std::unique_ptr<EmbedScheduler> scheduler;
};

// A model that writes text, its LoRA adapters and its continuous-batching scheduler.
struct LoadedGenerativeModel {
  GenerativeModelSpec spec;
  std::unique_ptr<GenerativeModel> model;
  std::vector<std::pair<std::string, std::shared_ptr<const LoraAdapter>>> adapters;
  // Declared last so it is destroyed first: its worker uses the model and adapters.
  std::unique_ptr<BatchScheduler> scheduler;
};

// An object detector served by POST /v1/detect.
struct LoadedDetector {
  std::string name, file;
  std::unique_ptr<YoloDetector> model;
};

// What a request's "model" names: a generative model and maybe one of its adapters.
struct GenerativeTarget {
  LoadedGenerativeModel* model = nullptr;
  const LoraAdapter* adapter = nullptr;  // null: the base model
  std::string id;                        // "name" or "name+adapter", echoed in responses
};

struct RouteInfo {
  std::string method;   // GET, POST, DELETE
  std::string pattern;  // OpenAPI style: /v1/index/items/{id}
  std::regex regex;
  bool documented = true;  // false: static file fallbacks
};

struct ServerContext {
  explicit ServerContext(ServerConfig c);
  ~ServerContext();

  ServerConfig config;
  ApiKeys keys;
  Metrics metrics;
  // The cores every served model computes with (config.threads; 0 = all).
  std::shared_ptr<ThreadPool> pool;
  std::mutex inference_lock;  // one model call on the cores at a time
  std::atomic<bool> ready{false};
  std::atomic<bool> load_failed{false};
  std::mutex load_mutex;
  std::string load_error;
  // Written by the loader thread before `ready` is set, read-only after.
  std::vector<std::unique_ptr<LoadedModel>> models;
  std::vector<std::unique_ptr<LoadedGenerativeModel>> generative_models;
  std::vector<std::unique_ptr<LoadedDetector>> detectors;
  std::mutex index_write_lock;          // one index writer at a time
  std::unique_ptr<IndexReplica> index_replica;  // set when config.index_read_only
  std::unique_ptr<PlantService> plant;  // null without a plant / data folder
  std::vector<RouteInfo> routes;

  // The named model ("" = the first); 503 while loading, 404 when unknown.
  LoadedModel& model(const std::string& name);
  // "name" or "name+adapter" ("" = the first generative model); 503 while
  // loading, 404 when the model or the adapter is unknown.
  GenerativeTarget generative_model(const std::string& id);
  // The named detector ("" = the first); 503 while loading, 404 when unknown.
  LoadedDetector& detector(const std::string& name);
  // The loaded model whose weights built the index (fingerprint), or nullptr.
  LoadedModel* model_by_fingerprint(const std::string& fingerprint);
  // Throws 503 unless the models are loaded.
  void require_ready();
};

using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

// Registers a handler under an OpenAPI-style pattern ({name} = one path segment).
// The wrapper labels metrics with the pattern and turns exceptions into JSON errors.
void add_route(httplib::Server& http, ServerContext& ctx, const std::string& method,
               const std::string& pattern, Handler handler, bool documented = true,
               const std::string& label = "");

// Route groups (one file each).
void add_core_routes(httplib::Server& http, ServerContext& ctx);
void add_embedding_routes(httplib::Server& http, ServerContext& ctx);
void add_chat_routes(httplib::Server& http, ServerContext& ctx);  // chat + text completions
void add_index_routes(httplib::Server& http, ServerContext& ctx);
void add_plant_routes(httplib::Server& http, ServerContext& ctx);
void add_detect_routes(httplib::Server& http, ServerContext& ctx);  // POST /v1/detect
void add_file_routes(httplib::Server& http, ServerContext& ctx);  // last: catch-all

// When the path matches a documented route of another method: answers 405 with
// Allow and returns true.
bool reject_method(const ServerContext& ctx, const httplib::Request& req, httplib::Response& res);

// The route name the current thread's request matched ("" before routing).
const std::string& current_route();
// Sets it from the route table (pattern of the documented route matching method
// and path, or "").
void set_current_route(const ServerContext& ctx, const httplib::Request& req);

// The OpenAPI document (docs/api/openapi.json, embedded at build time).
const std::string& openapi_document();

}  // namespace mmfuse::server
