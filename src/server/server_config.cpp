// load_server_config: the YAML file of `mmfuse serve`, checked key by key so an
// unknown key, a wrong type or a bad value is reported with its line.
#include "server/server_config.h"

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>

#include "mmfuse/error.h"
#include "store/store.h"

namespace fs = std::filesystem;

namespace mmfuse::server {

namespace {

class Reader {
 public:
  explicit Reader(fs::path file) : file_(std::move(file)), base_(file_.parent_path()) {}

  [[noreturn]] void fail(const YAML::Node& node, const std::string& field,
                         const std::string& what) const {
    std::string where = file_.string();
    if (node.IsDefined() && node.Mark().line >= 0)
      where += ":" + std::to_string(node.Mark().line + 1);
    throw_error(ErrorKind::bad_input, where + ": " + field + ": " + what);
  }

  void check_keys(const YAML::Node& map, const std::string& field,
                  const std::set<std::string>& known) const {
    if (!map.IsMap()) fail(map, field.empty() ? "(top level)" : field, "expected a mapping");
    for (const auto& kv : map) {
      const std::string key = kv.first.as<std::string>();
      if (!known.count(key)) {
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
        fail(kv.first, field.empty() ? key : field + "." + key,
             "unknown key (known: " + list + ")");
      }
    }
  }

  std::string str(const YAML::Node& n, const std::string& field) const {
    if (!n.IsScalar()) fail(n, field, "expected a string");
    return n.as<std::string>();
  }

  std::string path(const YAML::Node& n, const std::string& field) const {
    const std::string s = str(n, field);
    if (s.empty()) fail(n, field, "empty path");
    const fs::path p(s);
    return p.is_absolute() ? s : (base_ / p).lexically_normal().string();
  }

  int64_t integer(const YAML::Node& n, const std::string& field, int64_t lo, int64_t hi) const {
    int64_t v = 0;
    if (!n.IsScalar() || !YAML::convert<int64_t>::decode(n, v))
      fail(n, field, "expected an integer");
    if (v < lo || v > hi)
      fail(n, field,
           "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " +
               std::to_string(v));
    return v;
  }

  bool boolean(const YAML::Node& n, const std::string& field) const {
    bool v = false;
    if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v))
      fail(n, field, "expected true or false");
    return v;
  }

  std::vector<std::string> strings(const YAML::Node& n, const std::string& field) const {
    std::vector<std::string> out;
    if (n.IsScalar()) return {n.as<std::string>()};
    if (!n.IsSequence()) fail(n, field, "expected a list of strings");
    for (size_t i = 0; i < n.size(); ++i)
      out.push_back(str(n[i], field + "[" + std::to_string(i) + "]"));
    return out;
  }

  const fs::path& file() const { return file_; }

 private:
  fs::path file_, base_;
};

}  // namespace

std::vector<std::string> read_api_key_file(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw_error(ErrorKind::not_found, file.string() + ": cannot read the API key file");
  std::vector<std::string> keys;
  std::string line;
  while (std::getline(in, line)) {
    const auto b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos || line[b] == '#') continue;
    const auto e = line.find_last_not_of(" \t\r");
    keys.push_back(line.substr(b, e - b + 1));
  }
  MMFUSE_CHECK(!keys.empty(), bad_input, file.string() + ": no API keys in the file");
  return keys;
}

ServerConfig load_server_config(const fs::path& file) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(file.string());
  } catch (const YAML::BadFile&) {
    throw_error(ErrorKind::not_found, file.string() + ": cannot read the config file");
  } catch (const YAML::Exception& e) {
    throw_error(ErrorKind::bad_input, file.string() + ":" + std::to_string(e.mark.line + 1) +
                                          ": not valid YAML: " + e.msg);
  }
  Reader r(file);
  ServerConfig c;
  if (root.IsNull())
    throw_error(ErrorKind::bad_input, file.string() + ": the config file is empty");
  r.check_keys(root, "",
               {"host", "port", "threads", "http_threads", "models", "generative_models", "detectors",
                "index", "plant", "data_dir", "store", "batching", "limits", "api_keys",
                "api_keys_file", "cors",
                "static_root", "evidence_root"});
  try {
    if (auto n = root["host"]) c.host = r.str(n, "host");
    if (auto n = root["port"]) c.port = static_cast<int>(r.integer(n, "port", 0, 65535));
    if (auto n = root["threads"]) c.threads = static_cast<int>(r.integer(n, "threads", 0, 1024));
    if (auto n = root["http_threads"])
      c.http_threads = static_cast<int>(r.integer(n, "http_threads", 1, 4096));
    if (auto n = root["models"]) {
      if (!n.IsMap() || n.size() == 0)
        r.fail(n, "models", "expected a mapping of model name to model folder");
      for (const auto& kv : n) {
        const std::string name = kv.first.as<std::string>();
        if (name.empty()) r.fail(kv.first, "models", "empty model name");
        const std::string field = "models." + name;
        const YAML::Node& v = kv.second;
        if (v.IsScalar()) {  // shorthand: name: DIR
          c.models.push_back({name, r.path(v, field)});
          continue;
        }
        r.check_keys(v, field, {"path", "dtype"});
        if (!v["path"]) r.fail(v, field + ".path", "missing");
        ModelSpec spec{name, r.path(v["path"], field + ".path")};
        if (auto d = v["dtype"]) {
          try {
            spec.precision = parse_precision(r.str(d, field + ".dtype"), field + ".dtype");
          } catch (const Error&) {
            r.fail(d, field + ".dtype", "expected f32, bf16 or int8");
          }
        }
        c.models.push_back(std::move(spec));
      }
    }
    if (auto n = root["generative_models"]) {
      if (!n.IsMap() || n.size() == 0)
        r.fail(n, "generative_models", "expected a mapping of model name to settings");
      for (const auto& kv : n) {
        GenerativeModelSpec spec;
        spec.name = kv.first.as<std::string>();
        const std::string field = "generative_models." + spec.name;
        if (spec.name.empty()) r.fail(kv.first, "generative_models", "empty model name");
        const YAML::Node& v = kv.second;
        if (v.IsScalar()) {  // shorthand: name: DIR
          spec.dir = r.path(v, field);
        } else {
          r.check_keys(v, field,
                       {"path", "adapters", "max_running", "max_queued", "allow_remote_images",
                        "dtype"});
          if (!v["path"]) r.fail(v, field + ".path", "missing");
          spec.dir = r.path(v["path"], field + ".path");
          if (auto a = v["adapters"]) {
            if (!a.IsMap()) r.fail(a, field + ".adapters", "expected a mapping of name to folder");
            for (const auto& ad : a) {
              const std::string adapter = ad.first.as<std::string>();
              spec.adapters.emplace_back(adapter,
                                         r.path(ad.second, field + ".adapters." + adapter));
            }
          }
          if (auto x = v["max_running"])
            spec.max_running = static_cast<size_t>(r.integer(x, field + ".max_running", 1, 4096));
          if (auto x = v["max_queued"])
            spec.max_queued = static_cast<size_t>(r.integer(x, field + ".max_queued", 0, 1000000));
          if (auto x = v["allow_remote_images"])
            spec.allow_remote_images = r.boolean(x, field + ".allow_remote_images");
          if (auto d = v["dtype"]) {
            try {
              spec.precision = parse_precision(r.str(d, field + ".dtype"), field + ".dtype");
            } catch (const Error&) {
              r.fail(d, field + ".dtype", "expected f32 or int8");
            }
            if (spec.precision == Precision::bf16)
              r.fail(d, field + ".dtype", "expected f32 or int8 (decoders keep F16/BF16 as stored)");
          }
        }
        c.generative_models.push_back(std::move(spec));
      }
    }
    if (auto n = root["detectors"]) {
      if (!n.IsMap() || n.size() == 0)
        r.fail(n, "detectors", "expected a mapping of detector name to .onnx file");
      for (const auto& kv : n) {
        const std::string name = kv.first.as<std::string>();
        if (name.empty()) r.fail(kv.first, "detectors", "empty detector name");
        c.detectors.push_back({name, r.path(kv.second, "detectors." + name)});
      }
    }
    if (auto n = root["index"]) {
      if (n.IsScalar()) {
        c.index_dir = r.path(n, "index");
      } else {
        r.check_keys(n, "index", {"dir", "import_roots", "read_only", "poll_ms", "publish"});
        if (!n["dir"]) r.fail(n, "index.dir", "missing");
        c.index_dir = r.path(n["dir"], "index.dir");
        if (auto roots = n["import_roots"])
          for (size_t i = 0; i < roots.size(); ++i)
            c.index_import_roots.push_back(
                r.path(roots[i], "index.import_roots[" + std::to_string(i) + "]"));
        if (auto ro = n["read_only"]) c.index_read_only = r.boolean(ro, "index.read_only");
        if (auto pub = n["publish"]) c.index_publish = r.boolean(pub, "index.publish");
        if (auto poll = n["poll_ms"])
          c.index_poll_ms = static_cast<int>(r.integer(poll, "index.poll_ms", 10, 3600000));
      }
    }
    if (auto n = root["plant"]) c.plant_file = r.path(n, "plant");
    if (auto n = root["data_dir"]) c.data_dir = r.path(n, "data_dir");
    if (auto n = root["store"]) c.store_url = r.str(n, "store");
    if (auto n = root["batching"]) {
      r.check_keys(n, "batching", {"enabled", "max_batch", "max_wait_ms", "queue_size"});
      if (auto v = n["enabled"]) c.batching.enabled = r.boolean(v, "batching.enabled");
      if (auto v = n["max_batch"])
        c.batching.max_batch = static_cast<size_t>(r.integer(v, "batching.max_batch", 1, 4096));
      if (auto v = n["max_wait_ms"])
        c.batching.max_wait_ms = static_cast<int>(r.integer(v, "batching.max_wait_ms", 0, 10000));
      if (auto v = n["queue_size"])
        c.batching.queue_size =
            static_cast<size_t>(r.integer(v, "batching.queue_size", 1, 1000000));
    }
    if (auto n = root["limits"]) {
      r.check_keys(n, "limits",
                   {"max_body_bytes", "max_image_pixels", "request_timeout_s", "max_inputs",
                    "generation_timeout_s", "max_images", "max_choices"});
      if (auto v = n["max_body_bytes"])
        c.limits.max_body_bytes =
            static_cast<size_t>(r.integer(v, "limits.max_body_bytes", 1024, int64_t{1} << 34));
      if (auto v = n["max_image_pixels"])
        c.limits.max_image_pixels = r.integer(v, "limits.max_image_pixels", 1, int64_t{1} << 32);
      if (auto v = n["request_timeout_s"])
        c.limits.request_timeout_s =
            static_cast<int>(r.integer(v, "limits.request_timeout_s", 1, 3600));
      if (auto v = n["max_inputs"])
        c.limits.max_inputs = static_cast<size_t>(r.integer(v, "limits.max_inputs", 1, 1000000));
      if (auto v = n["generation_timeout_s"])
        c.limits.generation_timeout_s =
            static_cast<int>(r.integer(v, "limits.generation_timeout_s", 1, 86400));
      if (auto v = n["max_images"])
        c.limits.max_images = static_cast<size_t>(r.integer(v, "limits.max_images", 0, 1024));
      if (auto v = n["max_choices"])
        c.limits.max_choices = static_cast<size_t>(r.integer(v, "limits.max_choices", 1, 128));
    }
    if (auto n = root["api_keys"]) {
      c.api_keys = r.strings(n, "api_keys");
      for (size_t i = 0; i < c.api_keys.size(); ++i)
        if (c.api_keys[i].size() < 8)
          r.fail(n.IsSequence() ? n[i] : n, "api_keys", "a key must have at least 8 characters");
    }
    if (auto n = root["api_keys_file"]) {
      for (auto& k : read_api_key_file(r.path(n, "api_keys_file")))
        c.api_keys.push_back(std::move(k));
    }
    if (auto n = root["cors"]) {
      r.check_keys(n, "cors", {"origins"});
      if (auto v = n["origins"]) c.cors_origins = r.strings(v, "cors.origins");
    }
    if (auto n = root["static_root"]) c.static_root = r.path(n, "static_root");
    if (auto n = root["evidence_root"]) c.evidence_root = r.path(n, "evidence_root");
  } catch (const YAML::Exception& e) {
    throw_error(ErrorKind::bad_input,
                file.string() + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  validate_server_config(c);
  return c;
}

void validate_server_config(const ServerConfig& c) {
  MMFUSE_CHECK(!c.host.empty(), bad_input, "host: empty");
  MMFUSE_CHECK(c.port >= 0 && c.port <= 65535, bad_input, "port: must be 0..65535");
  MMFUSE_CHECK(!c.models.empty() || !c.generative_models.empty() || !c.detectors.empty() ||
                   !c.plant_file.empty() || !c.data_dir.empty() || !c.store_url.empty(),
               bad_input, "models: give at least one model (or a plant) to serve");
  if (!c.store_url.empty()) store::parse_store_url(c.store_url);  // bad_input naming it
  MMFUSE_CHECK(!c.index_read_only || !c.index_dir.empty(), bad_input,
               "index.read_only: needs an index folder (index.dir or --index)");
  MMFUSE_CHECK(!c.index_read_only || !c.index_publish, bad_input,
               "index: read_only and publish exclude each other (a replica does not write)");
  std::set<std::string> names;
  for (const auto& m : c.models) {
    MMFUSE_CHECK(names.insert(m.name).second, bad_input, "models." + m.name + ": listed twice");
    if (!fs::is_directory(m.dir))
      throw_error(ErrorKind::not_found, "models." + m.name + ": " + m.dir + " is not a folder");
    if (!fs::exists(fs::path(m.dir) / "config.json"))
      throw_error(ErrorKind::bad_input, "models." + m.name + ": " + m.dir + " has no config.json");
  }
  for (const auto& m : c.generative_models) {
    const std::string field = "generative_models." + m.name;
    // "name+adapter" selects an adapter, so "+" cannot be part of a name.
    MMFUSE_CHECK(m.name.find('+') == std::string::npos, bad_input,
                 field + ": a model name cannot contain \"+\"");
    MMFUSE_CHECK(names.insert(m.name).second, bad_input,
                 field + ": the name is already used by another model");
    if (!fs::is_directory(m.dir))
      throw_error(ErrorKind::not_found, field + ": " + m.dir + " is not a folder");
    if (!fs::exists(fs::path(m.dir) / "config.json"))
      throw_error(ErrorKind::bad_input, field + ": " + m.dir + " has no config.json");
    MMFUSE_CHECK(m.max_running >= 1, bad_input, field + ".max_running: must be at least 1");
    std::set<std::string> adapters;
    for (const auto& [adapter, dir] : m.adapters) {
      const std::string af = field + ".adapters." + adapter;
      MMFUSE_CHECK(!adapter.empty() && adapter.find('+') == std::string::npos, bad_input,
                   af + ": an adapter name must be non-empty and without \"+\"");
      MMFUSE_CHECK(adapters.insert(adapter).second, bad_input, af + ": listed twice");
      if (!fs::is_directory(dir))
        throw_error(ErrorKind::not_found, af + ": " + dir + " is not a folder");
      if (!fs::exists(fs::path(dir) / "adapter_config.json"))
        throw_error(ErrorKind::bad_input, af + ": " + dir + " has no adapter_config.json");
    }
  }
  for (const auto& d : c.detectors) {
    const std::string field = "detectors." + d.name;
    MMFUSE_CHECK(names.insert(d.name).second, bad_input,
                 field + ": the name is already used by another model");
    if (!fs::is_regular_file(d.model))
      throw_error(ErrorKind::not_found, field + ": " + d.model + " is not a file");
  }
  MMFUSE_CHECK(c.batching.max_batch >= 1, bad_input, "batching.max_batch: must be at least 1");
  MMFUSE_CHECK(c.batching.queue_size >= 1, bad_input, "batching.queue_size: must be at least 1");
  if (!c.plant_file.empty() && !fs::exists(c.plant_file))
    throw_error(ErrorKind::not_found, "plant: " + c.plant_file + " does not exist");
  if (!c.static_root.empty() && !fs::is_directory(c.static_root))
    throw_error(ErrorKind::not_found, "static_root: " + c.static_root + " is not a folder");
  if (!c.evidence_root.empty() && !fs::is_directory(c.evidence_root))
    throw_error(ErrorKind::not_found, "evidence_root: " + c.evidence_root + " is not a folder");
  // A read replica never imports (its copy of the folders may not exist).
  for (const auto& root : c.index_read_only ? std::vector<std::string>{} : c.index_import_roots)
    if (!fs::is_directory(root))
      throw_error(ErrorKind::not_found, "index.import_roots: " + root + " is not a folder");
  for (const auto& o : c.cors_origins)
    MMFUSE_CHECK(o == "*" || o.rfind("http://", 0) == 0 || o.rfind("https://", 0) == 0, bad_input,
                 "cors.origins: \"" + o + "\" is not an origin (http(s)://host[:port] or *)");
}

}  // namespace mmfuse::server
