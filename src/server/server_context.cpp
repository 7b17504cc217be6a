// ServerContext lookups and the route wrapper (metrics label + JSON errors).
#include "server/server_context.h"

#include <algorithm>

#include "server/http_util.h"
#include "server/index_replica.h"
#include "server/plant_service.h"

namespace mmfuse::server {

namespace {
thread_local std::string t_route;

// "/v1/items/{id}" → "/v1/items/([^/]+)"; other regex characters are escaped.
std::string pattern_to_regex(const std::string& pattern) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '{') {
      const size_t close = pattern.find('}', i);
      out += "([^/]+)";
      i = close;
    } else if (std::string(".+*?^$()[]|\\").find(c) != std::string::npos) {
      out += '\\';
      out += c;
    } else {
      out += c;
    }
  }
  return out;
}
}  // namespace

ServerContext::ServerContext(ServerConfig c)
    : config(std::move(c)),
      keys(config.api_keys),
      pool(std::make_shared<ThreadPool>(config.threads)) {}
ServerContext::~ServerContext() = default;

void set_current_route(const ServerContext& ctx, const httplib::Request& req) {
  t_route.clear();
  for (const auto& r : ctx.routes)
    if (r.documented && r.method == req.method && std::regex_match(req.path, r.regex)) {
      t_route = r.pattern;
      return;
    }
}

const std::string& current_route() {
  return t_route;
}

bool reject_method(const ServerContext& ctx, const httplib::Request& req, httplib::Response& res) {
  std::string allow;
  for (const auto& r : ctx.routes)
    if (r.documented && r.method != req.method && std::regex_match(req.path, r.regex) &&
        allow.find(r.method) == std::string::npos)
      allow += (allow.empty() ? "" : ", ") + r.method;
  if (allow.empty()) return false;
  res.set_header("Allow", allow);
  send_error(res, 405, "method_not_allowed",
             req.method + " is not allowed on " + req.path + " (allowed: " + allow + ")");
  return true;
}

void add_route(httplib::Server& http, ServerContext& ctx, const std::string& method,
               const std::string& pattern, Handler handler, bool documented,
               const std::string& label) {
  const std::string regex = documented ? pattern_to_regex(pattern) : pattern;
  ctx.routes.push_back({method, pattern, std::regex(regex), documented});
  auto wrapped = [name = label.empty() ? pattern : label, handler = std::move(handler)](
                     const httplib::Request& req, httplib::Response& res) {
    t_route = name;
    try {
      handler(req, res);
    } catch (...) {
      send_current_exception(res);
    }
  };
  if (method == "GET")
    http.Get(regex, wrapped);
  else if (method == "POST")
    http.Post(regex, wrapped);
  else if (method == "DELETE")
    http.Delete(regex, wrapped);
  else if (method == "PUT")
    http.Put(regex, wrapped);
  else if (method == "PATCH")
    http.Patch(regex, wrapped);
  else
    MMFUSE_ASSERT(false && "unknown method");
}

void ServerContext::require_ready() {
  if (ready) return;
  if (load_failed) {
    std::lock_guard<std::mutex> lock(load_mutex);
    throw HttpError(503, "unavailable", "models failed to load: " + load_error);
  }
  throw HttpError(503, "unavailable", "models are still loading; retry shortly");
}

LoadedModel& ServerContext::model(const std::string& name) {
  require_ready();
  MMFUSE_CHECK(!models.empty(), not_found, "no models are served");
  if (name.empty()) return *models.front();
  for (auto& m : models)
    if (m->name == name) return *m;
  std::string known;
  for (auto& m : models) known += (known.empty() ? "" : ", ") + m->name;
  throw_error(ErrorKind::not_found, "model \"" + name + "\" is not served (served: " + known + ")");
}

LoadedDetector& ServerContext::detector(const std::string& name) {
  require_ready();
  MMFUSE_CHECK(!detectors.empty(), not_found,
               "model: no detectors are served (see detectors in the config)");
  if (name.empty()) return *detectors.front();
  for (auto& d : detectors)
    if (d->name == name) return *d;
  std::string known;
  for (auto& d : detectors) known += (known.empty() ? "" : ", ") + d->name;
  throw_error(ErrorKind::not_found,
              "model \"" + name + "\" is not a served detector (served: " + known + ")");
}

GenerativeTarget ServerContext::generative_model(const std::string& id) {
  require_ready();
  MMFUSE_CHECK(!generative_models.empty(), not_found,
               "model: no generative models are served (see generative_models in the config)");
  auto known = [this] {
    std::string list;
    for (const auto& m : generative_models) {
      list += (list.empty() ? "" : ", ") + m->spec.name;
      for (const auto& a : m->adapters) list += ", " + m->spec.name + "+" + a.first;
    }
    return list;
  };
  if (id.empty())
    return {generative_models.front().get(), nullptr, generative_models.front()->spec.name};
  const auto plus = id.find('+');
  const std::string base = id.substr(0, plus);
  for (auto& m : generative_models) {
    if (m->spec.name != base) continue;
    if (plus == std::string::npos) return {m.get(), nullptr, id};
    const std::string adapter = id.substr(plus + 1);
    for (const auto& a : m->adapters)
      if (a.first == adapter) return {m.get(), a.second.get(), id};
    throw_error(ErrorKind::not_found, "model: \"" + base + "\" has no adapter \"" + adapter +
                                          "\" (served: " + known() + ")");
  }
  const bool embedding =
      std::any_of(models.begin(), models.end(), [&](const auto& m) { return m->name == base; });
  if (embedding)
    throw_error(ErrorKind::bad_input,
                "model: \"" + base + "\" is an embedding model; it cannot generate text");
  throw_error(ErrorKind::not_found,
              "model: \"" + id + "\" is not served (generative models: " + known() + ")");
}

LoadedModel* ServerContext::model_by_fingerprint(const std::string& fingerprint) {
  for (auto& m : models)
    if (m->fingerprint == fingerprint) return m.get();
  return nullptr;
}

}  // namespace mmfuse::server
