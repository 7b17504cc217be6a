// POST /v1/embeddings (OpenAI-compatible, texts and images, batched through the
// model's scheduler) and POST /v1/classify (zero-shot image classification).
#include "models/clip.h"
#include "models/zero_shot.h"
#include "server/http_util.h"
#include "server/server_context.h"

namespace mmfuse::server {

namespace {

std::string optional_string(const Json& body, const char* field, const std::string& fallback) {
  if (!body.contains(field) || body[field].is_null()) return fallback;
  MMFUSE_CHECK(body[field].is_string(), bad_input, std::string(field) + ": expected a string");
  return body[field].get<std::string>();
}

EmbedInput image_input(const Json& url_field, const std::string& field, const ServerContext& ctx) {
  std::string url;
  if (url_field.is_string()) {
    url = url_field.get<std::string>();
  } else {
    MMFUSE_CHECK(url_field.is_object() && url_field.contains("url") && url_field["url"].is_string(),
                 bad_input, field + ": expected {\"url\": \"data:image/...;base64,...\"}");
    url = url_field["url"].get<std::string>();
  }
  EmbedInput in;
  in.kind = EmbedInput::Kind::image;
  in.image =
      decode_limited_image(decode_data_url(url, field), field, ctx.config.limits.max_image_pixels);
  return in;
}

// The "input" field: a string, a list of strings, or a list of typed items.
std::vector<EmbedInput> parse_inputs(const Json& body, const ServerContext& ctx) {
  MMFUSE_CHECK(body.contains("input"), bad_input, "input: missing");
  const Json& input = body["input"];
  std::vector<EmbedInput> out;
  if (input.is_string()) {
    out.push_back({EmbedInput::Kind::text, input.get<std::string>(), {}});
    return out;
  }
  MMFUSE_CHECK(input.is_array(), bad_input, "input: expected a string or a list");
  MMFUSE_CHECK(!input.empty(), bad_input, "input: empty list");
  MMFUSE_CHECK(input.size() <= ctx.config.limits.max_inputs, bad_input,
               "input: " + std::to_string(input.size()) + " inputs, the limit is " +
                   std::to_string(ctx.config.limits.max_inputs));
  for (size_t i = 0; i < input.size(); ++i) {
    const Json& item = input[i];
    const std::string field = "input[" + std::to_string(i) + "]";
    if (item.is_string()) {
      out.push_back({EmbedInput::Kind::text, item.get<std::string>(), {}});
      continue;
    }
    if (item.is_number_integer() || item.is_array())
      throw_error(ErrorKind::unsupported, field + ": token-id inputs are not supported; send text");
    MMFUSE_CHECK(item.is_object() && item.contains("type") && item["type"].is_string(), bad_input,
                 field + ": expected a string or {\"type\": \"text\"|\"image_url\", ...}");
    const std::string type = item["type"].get<std::string>();
    if (type == "text") {
      MMFUSE_CHECK(item.contains("text") && item["text"].is_string(), bad_input,
                   field + ".text: expected a string");
      out.push_back({EmbedInput::Kind::text, item["text"].get<std::string>(), {}});
    } else if (type == "image_url") {
      MMFUSE_CHECK(item.contains("image_url"), bad_input, field + ".image_url: missing");
      out.push_back(image_input(item["image_url"], field + ".image_url", ctx));
    } else {
      throw_error(ErrorKind::bad_input, field + ".type: \"" + type + "\" is not text or image_url");
    }
  }
  return out;
}

// Waits for a job within the request timeout (504 after it).
const std::vector<float>& wait_job(EmbedJob& job, const ServerContext& ctx) {
  if (!job.wait_for(std::chrono::seconds(ctx.config.limits.request_timeout_s)))
    throw HttpError(504, "timeout",
                    "the model did not answer within " +
                        std::to_string(ctx.config.limits.request_timeout_s) + " s");
  return job.result();
}

std::shared_ptr<EmbedJob> submit(LoadedModel& m, std::vector<EmbedInput> inputs) {
  try {
    return m.scheduler->submit(std::move(inputs));
  } catch (const QueueFull&) {
    throw HttpError(503, "unavailable", "model " + m.name + " is busy (queue full); retry shortly");
  }
}

}  // namespace

void add_embedding_routes(httplib::Server& http, ServerContext& ctx) {
  add_route(http, ctx, "POST", "/v1/embeddings",
            [&ctx](const httplib::Request& req, httplib::Response& res) {
              const Json body = parse_json_object(req);
              LoadedModel& m = ctx.model(optional_string(body, "model", ""));
              const std::string format = optional_string(body, "encoding_format", "float");
              MMFUSE_CHECK(format == "float" || format == "base64", bad_input,
                           "encoding_format: \"" + format + "\" is not float or base64");
              bool normalize = true;
              if (body.contains("normalize")) {
                MMFUSE_CHECK(body["normalize"].is_boolean(), bad_input,
                             "normalize: expected true or false");
                normalize = body["normalize"].get<bool>();
              }
              const size_t dim = static_cast<size_t>(m.model->dim());
              if (body.contains("dimensions") && !body["dimensions"].is_null())
                MMFUSE_CHECK(body["dimensions"].is_number_integer() &&
                                 body["dimensions"].get<int64_t>() == int64_t(dim),
                             unsupported,
                             "dimensions: this model only gives " + std::to_string(dim));
              std::vector<EmbedInput> inputs = parse_inputs(body, ctx);
              // usage counts text tokens as the model sees them (with start/end, truncated to the
              // context).
              size_t tokens = 0;
              for (const auto& in : inputs)
                if (in.kind == EmbedInput::Kind::text)
                  tokens += m.model->count_text_tokens(in.text);
              const size_t n = inputs.size();
              auto job = submit(m, std::move(inputs));
              std::vector<float> features = wait_job(*job, ctx);
              if (normalize) l2_normalize_rows(features.data(), n, dim);
              Json data = Json::array();
              for (size_t i = 0; i < n; ++i) {
                const float* row = features.data() + i * dim;
                Json item = {{"object", "embedding"}, {"index", i}};
                if (format == "base64") {
                  item["embedding"] =
                      base64_encode(row, dim * sizeof(float));  // little-endian float32, as OpenAI
                } else {
                  Json arr = Json::array();
                  for (size_t k = 0; k < dim; ++k) arr.push_back(shortest_float(row[k]));
                  item["embedding"] = std::move(arr);
                }
                data.push_back(std::move(item));
              }
              send_json(res, {{"object", "list"},
                              {"data", std::move(data)},
                              {"model", m.name},
                              {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}});
            });

  add_route(http, ctx, "POST", "/v1/classify",
            [&ctx](const httplib::Request& req, httplib::Response& res) {
              const Json body = parse_json_object(req);
              LoadedModel& m = ctx.model(optional_string(body, "model", ""));
              MMFUSE_CHECK(body.contains("image") && body["image"].is_string(), bad_input,
                           "image: expected a data URL or base64 string");
              MMFUSE_CHECK(
                  body.contains("labels") && body["labels"].is_array() && !body["labels"].empty(),
                  bad_input, "labels: expected a non-empty list of strings");
              std::vector<std::string> labels;
              for (size_t i = 0; i < body["labels"].size(); ++i) {
                const Json& l = body["labels"][i];
                MMFUSE_CHECK(l.is_string() && !l.get<std::string>().empty(), bad_input,
                             "labels[" + std::to_string(i) + "]: expected a non-empty string");
                labels.push_back(l.get<std::string>());
              }
              MMFUSE_CHECK(labels.size() <= ctx.config.limits.max_inputs, bad_input,
                           "labels: too many labels");
              // No template: the model's own, as `mmfuse classify` uses.
              std::string templ = optional_string(body, "template", "");
              if (templ.empty()) templ = m.model->default_prompt_template();
              apply_template(templ, "x");  // validates the template before any work
              Image image =
                  decode_limited_image(decode_data_url(body["image"].get<std::string>(), "image"),
                                       "image", ctx.config.limits.max_image_pixels);
              std::vector<ZeroShotScore> scores;
              {
                std::lock_guard<std::mutex> cores(ctx.inference_lock);
                scores = zero_shot_classify(*m.model, image, labels, templ);
              }
              Json out = Json::array();
              for (const auto& s : scores)
                out.push_back({{"label", s.label}, {"score", shortest_float(s.score)}});
              send_json(res, {{"model", m.name}, {"labels", out}});
            });
}

}  // namespace mmfuse::server
