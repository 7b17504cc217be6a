// Configuration of `mmfuse serve`: the YAML file (or the equivalent flags) with
// its defaults, validated at start so a typo fails fast with the field and line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/precision.h"

namespace mmfuse::server {

struct ModelSpec {
  std::string name;  // the name clients pass as "model"
  std::string dir;   // Hugging Face model folder
  // The encoder layers' arithmetic (`dtype: f32|bf16|int8`; models given as
  // `name: {path: DIR, dtype: int8}`).
  Precision precision = Precision::f32;
};

// A model that writes text (registry capability `generate`), served by
// /v1/chat/completions and /v1/completions. Clients name it "name", or
// "name+adapter" for one of its LoRA adapters (applied unmerged per request).
struct GenerativeModelSpec {
  std::string name;
  std::string dir;
  std::vector<std::pair<std::string, std::string>> adapters;  // adapter name -> PEFT folder
  size_t max_running = 8;            // sequences decoded together (continuous batching)
  size_t max_queued = 64;            // requests waiting beyond that: 503 + Retry-After
  bool allow_remote_images = false;  // image_url may be http(s):// or file:// (else data: only)
  Precision precision = Precision::f32;  // `dtype`: f32 = weights as stored, int8 = q8_0
};

// An object detector (an Ultralytics YOLO ONNX export), served by POST /v1/detect.
struct DetectorSpec {
  std::string name;   // the name clients pass as "model"
  std::string model;  // the .onnx file
};

struct BatchingConfig {
  bool enabled = true;      // false: each request runs alone (still split by max_batch)
  size_t max_batch = 32;    // inputs per model call
  int max_wait_ms = 5;      // how long a partial batch waits for more requests
  size_t queue_size = 256;  // requests waiting per model; beyond it: 503 + Retry-After
};

struct LimitsConfig {
  size_t max_body_bytes = 32u << 20;      // 413 above
  int64_t max_image_pixels = 40'000'000;  // checked from the image header before decoding
  int request_timeout_s = 30;             // socket reads/writes and the wait for inference
  size_t max_inputs = 2048;               // inputs per embeddings request
  int generation_timeout_s = 600;         // longest a non-streamed generation may take
  size_t max_images = 8;                  // images per chat request
  size_t max_choices = 8;                 // "n" per generation request
};

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 8080;
  int threads = 0;        // inference cores (0 = all)
  int http_threads = 64;  // connections served at once
  std::vector<ModelSpec> models;
  std::vector<GenerativeModelSpec> generative_models;
  std::vector<DetectorSpec> detectors;
  std::string index_dir;                        // retrieval index folder (optional)
  std::vector<std::string> index_import_roots;  // server-side folders POST /v1/index/items may read
  // A read replica (`--index-read-only`, index.read_only): searches the generation
  // the writer published under index_dir/published, polled every index_poll_ms;
  // the write routes answer 403 (docs/scale-out.md, "Retrieval replicas").
  bool index_read_only = false;
  int index_poll_ms = 1000;
  // The writer of replicas (`--index-publish`, index.publish): after each write it
  // publishes the new generation to index_dir/published (created when absent).
  bool index_publish = false;
  std::string plant_file;                       // plant description (inspection routes)
  std::string data_dir;                         // store + evidence of the plant
  // The store's URL (`--store`, `store:`): sqlite:///path/store.db or postgresql://...;
  // empty = SQLite in data_dir.
  std::string store_url;
  BatchingConfig batching;
  LimitsConfig limits;
  std::vector<std::string> api_keys;      // empty: no authentication
  std::vector<std::string> cors_origins;  // empty: no CORS headers ("*" = any origin)
  std::string static_root;                // dashboard files served at /
  std::string evidence_root;              // evidence files served at /evidence/
};

// Reads and validates a config file. Relative paths are taken from the file's
// folder. Throws Error(bad_input) naming the file, the field and its line.
ServerConfig load_server_config(const std::filesystem::path& file);

// Checks ranges and that the named files and folders exist (bad_input / not_found).
void validate_server_config(const ServerConfig& config);

// The API keys in a file: one per line, blank lines and #-comments ignored.
std::vector<std::string> read_api_key_file(const std::filesystem::path& file);

}  // namespace mmfuse::server
