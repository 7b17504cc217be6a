// Service routes: liveness, readiness, limits and features, model list,
// Prometheus metrics and the OpenAPI document.
#include "server/http_util.h"
#include "server/plant_service.h"
#include "server/server_context.h"

namespace mmfuse::server {

void add_core_routes(httplib::Server& http, ServerContext& ctx) {
  add_route(http, ctx, "GET", "/healthz", [](const httplib::Request&, httplib::Response& res) {
    send_json(res, {{"status", "ok"}});
  });

  add_route(http, ctx, "GET", "/readyz", [&ctx](const httplib::Request&, httplib::Response& res) {
    if (ctx.ready) {
      // A replica whose database is unreachable takes no traffic until it answers again.
      const std::string problem = ctx.plant ? ctx.plant->store_problem() : std::string();
      if (problem.empty()) return send_json(res, {{"status", "ready"}});
      res.set_header("Retry-After", "1");
      return send_json(res,
                       {{"status", "unavailable"},
                        {"error", {{"type", "unavailable"}, {"message", "store: " + problem}}}},
                       503);
    }
    res.set_header("Retry-After", "1");
    if (ctx.load_failed) {
      std::lock_guard<std::mutex> lock(ctx.load_mutex);
      return send_json(
          res,
          {{"status", "failed"}, {"error", {{"type", "unavailable"}, {"message", ctx.load_error}}}},
          503);
    }
    send_json(res,
              {{"status", "loading"},
               {"error", {{"type", "unavailable"}, {"message", "models are loading"}}}},
              503);
  });

  add_route(http, ctx, "GET", "/info", [&ctx](const httplib::Request&, httplib::Response& res) {
    const ServerConfig& c = ctx.config;
    Json models = Json::array();
    if (ctx.ready)
      for (const auto& m : ctx.models) models.push_back(m->name);
    else
      for (const auto& m : c.models) models.push_back(m.name);
    Json generative = Json::array();
    for (const auto& m : c.generative_models) {
      generative.push_back(m.name);
      for (const auto& a : m.adapters) generative.push_back(m.name + "+" + a.first);
    }
    Json detectors = Json::array();
    for (const auto& d : c.detectors) detectors.push_back(d.name);
    send_json(res, {{"version", "0.1.0"},
                    {"ready", ctx.ready.load()},
                    {"models", models},
                    {"generative_models", generative},
                    {"detectors", detectors},
                    {"limits",
                     {{"max_batch", c.batching.max_batch},
                      {"max_wait_ms", c.batching.max_wait_ms},
                      {"queue_size", c.batching.queue_size},
                      {"max_body_bytes", c.limits.max_body_bytes},
                      {"max_image_pixels", c.limits.max_image_pixels},
                      {"max_inputs", c.limits.max_inputs},
                      {"request_timeout_s", c.limits.request_timeout_s},
                      {"generation_timeout_s", c.limits.generation_timeout_s},
                      {"max_images", c.limits.max_images},
                      {"max_choices", c.limits.max_choices}}},
                    {"features",
                     {{"plant", !c.plant_file.empty() || !c.data_dir.empty() || !c.store_url.empty()},
                      {"index", !c.index_dir.empty()},
                      {"auth", ctx.keys.enabled()},
                      {"batching", c.batching.enabled},
                      {"generation", !c.generative_models.empty()},
                      {"detection", !c.detectors.empty()}}}});
  });

  add_route(http, ctx, "GET", "/v1/models",
            [&ctx](const httplib::Request&, httplib::Response& res) {
              ctx.require_ready();
              Json data = Json::array();
              for (const auto& m : ctx.models) {
                Json modalities = Json::array();
                if (m->architecture->can(Capability::embed_text)) modalities.push_back("text");
                if (m->architecture->can(Capability::embed_image)) modalities.push_back("image");
                data.push_back({{"id", m->name},
                                {"object", "model"},
                                {"created", 0},
                                {"owned_by", "mmfuse"},
                                {"dim", m->model->dim()},
                                {"modalities", modalities},
                                {"architecture", m->architecture->model_type},
                                {"capabilities", m->architecture->capability_names()}});
              }
              // Generative models, then each adapter as "name+adapter" (vLLM's LoRA
              // modules: root = the base model, parent = the model it adapts).
              for (const auto& m : ctx.generative_models) {
                const GenerativeModel& gm = *m->model;
                const Json modalities =
                    gm.takes_images() ? Json::array({"text", "image"}) : Json::array({"text"});
                Json entry = {{"id", m->spec.name},
                              {"object", "model"},
                              {"created", 0},
                              {"owned_by", "mmfuse"},
                              {"root", m->spec.name},
                              {"parent", nullptr},
                              {"max_model_len", gm.language_model().max_positions()},
                              {"modalities", modalities},
                              {"architecture", gm.model_type()},
                              {"capabilities", Json::array({"generate"})}};
                data.push_back(entry);
                for (const auto& a : m->adapters) {
                  Json adapted = entry;
                  adapted["id"] = m->spec.name + "+" + a.first;
                  adapted["parent"] = m->spec.name;
                  data.push_back(std::move(adapted));
                }
              }
              for (const auto& d : ctx.detectors)
                data.push_back({{"id", d->name},
                                {"object", "model"},
                                {"created", 0},
                                {"owned_by", "mmfuse"},
                                {"modalities", Json::array({"image"})},
                                {"architecture", "yolo"},
                                {"classes", d->model->class_names()},
                                {"capabilities", Json::array({"detect"})}});
              send_json(res, {{"object", "list"}, {"data", data}});
            });

  add_route(http, ctx, "GET", "/metrics", [&ctx](const httplib::Request&, httplib::Response& res) {
    res.set_content(ctx.metrics.render(), "text/plain; version=0.0.4; charset=utf-8");
  });

  add_route(http, ctx, "GET", "/openapi.json", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(openapi_document(), "application/json");
  });
}

}  // namespace mmfuse::server
