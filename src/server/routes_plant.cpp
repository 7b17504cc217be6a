// Plant routes (shapes agreed with the dashboard, docs/api.md): devices and
// their trends, inspections, alarms and acknowledgement, the current round,
// alarm statistics, and POST /v1/inspect (multipart uploads of one point's
// camera image, IR frame, audio and sensor CSV, judged, fused and recorded).
#include <charconv>
#include <ctime>
#include <map>
#include <set>

#include "core/utc_time.h"
#include "inspect/point_inspector.h"
#include "server/http_util.h"
#include "server/plant_service.h"
#include "server/server_context.h"
#include "store/clock.h"
#include "vision/image_probe.h"

namespace fs = std::filesystem;

namespace mmfuse::server {

namespace {

PlantService& plant(ServerContext& ctx) {
  if (!ctx.plant) throw HttpError(404, "not_found", "no plant is configured on this server");
  return *ctx.plant;
}

Json iso_or_null(int64_t ms) {
  return ms > 0 ? Json(iso8601_utc(ms)) : Json(nullptr);
}

// "2026-11-29T08:00:00.123Z" (fraction and Z optional; +hh:mm offsets too) or epoch ms.
int64_t parse_time(const std::string& text, const std::string& field) {
  int64_t ms = 0;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), ms);
  if (r.ec == std::errc() && r.ptr == text.data() + text.size()) return ms;
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
    if (std::sscanf(text.c_str(), "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                    &consumed) != 3 ||
        consumed != static_cast<int>(text.size()))
      throw_error(ErrorKind::bad_input,
                  field + ": \"" + text + "\" is not an ISO-8601 time or epoch milliseconds");
  }
  MMFUSE_CHECK(tm.tm_mon >= 1 && tm.tm_mon <= 12 && tm.tm_mday >= 1 && tm.tm_mday <= 31 &&
                   tm.tm_hour <= 23 && tm.tm_min <= 59 && tm.tm_sec <= 60,
               bad_input, field + ": \"" + text + "\" is not a valid time");
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  ms = static_cast<int64_t>(timegm(&tm)) * 1000;
  size_t pos = static_cast<size_t>(consumed);
  if (pos < text.size() && text[pos] == '.') {
    int64_t frac = 0, scale = 1000;
    ++pos;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
      if (scale > 1) frac = frac * 10 + (text[pos] - '0'), scale /= 10;
      ++pos;
    }
    ms += frac * scale;
  }
  const std::string zone = text.substr(pos);
  if (zone.empty() || zone == "Z") return ms;
  int hh = 0, mm = 0;
  char sign = 0;
  if (std::sscanf(zone.c_str(), "%c%2d:%2d", &sign, &hh, &mm) == 3 && (sign == '+' || sign == '-'))
    return ms - (sign == '+' ? 1 : -1) * (hh * 3600000LL + mm * 60000LL);
  throw_error(ErrorKind::bad_input, field + ": \"" + text + "\" has an unknown time zone");
}

int query_limit(const httplib::Request& req, int fallback) {
  if (!req.has_param("limit")) return fallback;
  const std::string v = req.get_param_value("limit");
  int n = 0;
  const auto r = std::from_chars(v.data(), v.data() + v.size(), n);
  MMFUSE_CHECK(r.ec == std::errc() && r.ptr == v.data() + v.size() && n >= 1 && n <= 10000,
               bad_input, "limit: expected an integer from 1 to 10000, got \"" + v + "\"");
  return n;
}

// "/evidence/<path relative to the evidence root>", or nothing for files elsewhere.
std::optional<std::string> evidence_url(const std::string& path, const fs::path& root) {
  if (path.empty()) return std::nullopt;
  const fs::path p = fs::path(path).lexically_normal();
  const fs::path rel = p.is_absolute() ? p.lexically_relative(root.lexically_normal()) : p;
  if (rel.empty() || *rel.begin() == "..") return std::nullopt;
  std::error_code ec;
  if (!fs::is_regular_file(root / rel, ec)) return std::nullopt;  // e.g. an upload's bare name
  std::string url = "/evidence/";
  for (char c : rel.generic_string()) {
    if (std::isalnum(static_cast<unsigned char>(c)) ||
        std::string("-._~/").find(c) != std::string::npos) {
      url += c;
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
      url += buf;
    }
  }
  return url;
}

Json evidence_urls(const std::vector<std::string>& paths, const fs::path& root) {
  Json out = Json::array();
  for (const auto& p : paths)
    if (auto u = evidence_url(p, root)) out.push_back(*u);
  return out;
}

fs::path evidence_root(const ServerContext& ctx, PlantService& p) {
  return ctx.config.evidence_root.empty() ? p.store().evidence_dir()
                                          : fs::path(ctx.config.evidence_root);
}

std::string device_status_name(const store::DeviceStatus& s) {
  if (s.last_inspection_id == 0) return "unknown";
  if (s.alarm) return "alarm";
  for (const auto& [m, st] : s.modality_status)
    if (st == "missing" || st == "error") return "missing";
  return "ok";
}

Json inspection_json(const store::InspectionRow& row, const fs::path& root) {
  const auto& r = row.record;
  Json mods = Json::array();
  for (const auto& m : r.modalities)
    mods.push_back({{"modality", inspect::modality_name(m.modality)},
                    {"status", inspect::modality_status_name(m.status)},
                    {"score", m.score},
                    {"raw_score", m.raw_score},
                    {"decision", m.decision},
                    {"message", m.message},
                    {"detail", Json::parse(m.detail.dump())},
                    {"evidence", evidence_urls(m.evidence, root)}});
  return {{"id", row.id},
          {"round_id", r.round_id},
          {"device_id", r.device_id},
          {"point_id", r.point_id},
          {"started", iso_or_null(r.started_ms)},
          {"finished", iso_or_null(r.finished_ms)},
          {"fused_score", r.fused_score},
          {"alarm", r.alarm},
          {"alarm_type", r.alarm_type.empty() ? Json(nullptr) : Json(r.alarm_type)},
          {"alarm_id", row.alarm_id == 0 ? Json(nullptr) : Json(row.alarm_id)},
          {"fusion_rule", r.fusion_rule},
          {"modalities", mods}};
}

Json alarm_json(const store::AlarmRow& a, const fs::path& root) {
  Json mods = Json::object();
  for (const auto& [name, m] : a.modalities.items()) {
    if (m.is_number())
      mods[name] = m.get<double>();
    else if (m.is_object() && m.contains("score") && m["score"].is_number())
      mods[name] = m["score"].get<double>();
  }
  return {{"id", a.id},
          {"type", a.type},
          {"device_id", a.device_id},
          {"point_id", a.point_id},
          {"area", a.area},
          {"round_id", a.round_id},
          {"inspection_id", a.inspection_id == 0 ? Json(nullptr) : Json(a.inspection_id)},
          {"fused_score", a.fused_score},
          {"modalities", mods},
          {"evidence", evidence_urls(a.evidence, root)},
          {"created", iso_or_null(a.created_ms)},
          {"last_seen", iso_or_null(a.last_seen_ms)},
          {"repeats", a.repeats},
          {"acknowledged", !a.acknowledged_by.empty()},
          {"acknowledged_by", a.acknowledged_by.empty() ? Json(nullptr) : Json(a.acknowledged_by)},
          {"acknowledged_at", iso_or_null(a.acknowledged_at_ms)}};
}

int64_t parse_path_id(const std::string& text) {
  int64_t id = 0;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), id);
  MMFUSE_CHECK(r.ec == std::errc() && r.ptr == text.data() + text.size() && id > 0, bad_input,
               "id: \"" + text + "\" is not a positive integer");
  return id;
}

// The uploaded file of the first of `names` present, as a modality input.
std::optional<inspect::ModalityInput> upload(const httplib::Request& req,
                                             std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (req.has_file(n)) {
      const auto f = req.get_file_value(n);
      MMFUSE_CHECK(!f.content.empty(), bad_input, std::string(n) + ": empty file");
      return inspect::ModalityInput{f.filename.empty() ? n : f.filename, f.content};
    }
  return std::nullopt;
}

std::string form_field(const httplib::Request& req, const char* name) {
  if (req.has_file(name)) return req.get_file_value(name).content;
  if (req.has_param(name)) return req.get_param_value(name);
  return "";
}

void check_image_pixels(const std::optional<inspect::ModalityInput>& in, const char* field,
                        int64_t max_pixels) {
  if (!in) return;
  const auto* data = reinterpret_cast<const uint8_t*>(in->bytes.data());
  const auto h = probe_image_header(data, in->bytes.size());
  MMFUSE_CHECK(h.has_value(), bad_input,
               std::string(field) + ": not a PNG, JPEG, WebP or BMP image");
  if (h->width <= 0 || h->height <= 0 || h->width > max_pixels || h->height > max_pixels ||
      h->width * h->height > max_pixels)
    throw HttpError(413, "too_large",
                    std::string(field) + ": image of " + std::to_string(h->width) + "x" +
                        std::to_string(h->height) + " pixels is over the limit of " +
                        std::to_string(max_pixels));
}

void inspect_route(ServerContext& ctx, const httplib::Request& req, httplib::Response& res) {
  PlantService& p = plant(ctx);
  MMFUSE_CHECK(
      req.is_multipart_form_data(), bad_input,
      "expected multipart/form-data with device, point and image / ir / audio / sensors files");
  const std::string device = form_field(req, "device"), point = form_field(req, "point");
  MMFUSE_CHECK(!device.empty(), bad_input, "device: missing form field");
  MMFUSE_CHECK(!point.empty(), bad_input, "point: missing form field");
  inspect::PointInputs in;
  in.camera = upload(req, {"image", "camera"});
  in.infrared = upload(req, {"ir", "infrared"});
  in.sound = upload(req, {"audio", "sound"});
  in.sensors = upload(req, {"sensors"});
  MMFUSE_CHECK(in.camera || in.infrared || in.sound || in.sensors, bad_input,
               "give at least one of the files image, ir, audio or sensors");
  check_image_pixels(in.camera, "image", ctx.config.limits.max_image_pixels);
  check_image_pixels(in.infrared, "ir", ctx.config.limits.max_image_pixels);
  const inspect::PointInspector& inspector = p.inspector(device, point);
  inspect::InspectOptions options;
  const std::string round = form_field(req, "round_id");
  options.round_id = round.empty() ? "api" : round;
  options.evidence_dir = p.store().evidence_dir();
  const inspect::InspectionRecord record = inspector.inspect(in, options);
  const store::RecordOutcome out = p.record(record);
  const auto row = p.store().find_inspection(out.inspection_id);
  MMFUSE_ASSERT(row.has_value());
  Json j = inspection_json(*row, evidence_root(ctx, p));
  j["deduplicated"] = out.deduplicated;
  send_json(res, j, 201);
}

}  // namespace

void add_plant_routes(httplib::Server& http, ServerContext& ctx) {
  add_route(
      http, ctx, "GET", "/v1/devices", [&ctx](const httplib::Request&, httplib::Response& res) {
        PlantService& p = plant(ctx);
        Json devices = Json::array();
        for (const auto& s : p.store().device_status()) {
          devices.push_back(
              {{"id", s.device.id},
               {"name", s.device.name},
               {"area", s.device.area},
               {"location", s.device.location},
               {"status", device_status_name(s)},
               {"last_fused_score", s.last_inspection_id ? Json(s.fused_score) : Json(nullptr)},
               {"last_inspected", iso_or_null(s.last_inspected_ms)},
               {"open_alarms", s.open_alarms},
               {"alarm_type", s.alarm_type.empty() ? Json(nullptr) : Json(s.alarm_type)},
               {"modalities", Json(s.modality_status)},
               {"points", Json::parse(s.device.points.dump())}});
        }
        send_json(res, {{"devices", devices}});
      });

  add_route(http, ctx, "GET", "/v1/devices/{id}/trend",
            [&ctx](const httplib::Request& req, httplib::Response& res) {
              PlantService& p = plant(ctx);
              const std::string device = req.matches[1];
              if (!p.store().find_device(device))
                throw_error(ErrorKind::not_found, "no device \"" + device + "\"");
              const int64_t since =
                  req.has_param("since") ? parse_time(req.get_param_value("since"), "since") : 0;
              const std::vector<std::string> channels = p.store().sensor_channels(device);
              std::vector<std::string> wanted = channels;
              if (req.has_param("channel")) {
                const std::string c = req.get_param_value("channel");
                if (std::find(channels.begin(), channels.end(), c) == channels.end())
                  throw_error(ErrorKind::not_found,
                              "device " + device + " has no sensor channel \"" + c + "\"");
                wanted = {c};
              }
              Json sensors = Json::object();
              for (const auto& c : wanted) {
                Json series = Json::array();
                for (const auto& t : p.store().sensor_trend(device, c, since, 500))
                  series.push_back({iso8601_utc(t.t_ms), t.value});
                sensors[c] = std::move(series);
              }
              Json fused = Json::array();
              for (const auto& t : p.store().fused_trend(device, since, 500))  // oldest first
                fused.push_back({iso8601_utc(t.t_ms), t.value});
              send_json(res, {{"device_id", device},
                              {"channels", channels},
                              {"sensors", sensors},
                              {"fused", fused}});
            });

  add_route(http, ctx, "GET", "/v1/inspections",
            [&ctx](const httplib::Request& req, httplib::Response& res) {
              PlantService& p = plant(ctx);
              store::InspectionFilter f;
              f.device_id = req.has_param("device") ? req.get_param_value("device") : "";
              f.since_ms =
                  req.has_param("since") ? parse_time(req.get_param_value("since"), "since") : 0;
              f.limit = query_limit(req, 100);
              if (req.has_param("round")) f.round_id = req.get_param_value("round");
              const fs::path root = evidence_root(ctx, p);
              Json out = Json::array();
              for (const auto& row : p.store().list_inspections(f))
                out.push_back(inspection_json(row, root));
              send_json(res, {{"inspections", out}});
            });

  add_route(
      http, ctx, "GET", "/v1/alarms", [&ctx](const httplib::Request& req, httplib::Response& res) {
        PlantService& p = plant(ctx);
        store::AlarmFilter f;
        if (req.has_param("acknowledged")) {
          const std::string a = req.get_param_value("acknowledged");
          MMFUSE_CHECK(a == "true" || a == "false", bad_input,
                       "acknowledged: expected true or false, got \"" + a + "\"");
          f.acknowledged = a == "true";
        }
        f.device_id = req.has_param("device") ? req.get_param_value("device") : "";
        f.since_ms = req.has_param("since") ? parse_time(req.get_param_value("since"), "since") : 0;
        f.limit = query_limit(req, 100);
        const fs::path root = evidence_root(ctx, p);
        Json out = Json::array();
        for (const auto& a : p.store().list_alarms(f)) out.push_back(alarm_json(a, root));
        send_json(res, {{"alarms", out}});
      });

  add_route(http, ctx, "POST", "/v1/alarms/{id}/ack",
            [&ctx](const httplib::Request& req, httplib::Response& res) {
              PlantService& p = plant(ctx);
              const int64_t id = parse_path_id(req.matches[1]);
              const Json body = parse_json_object(req);
              MMFUSE_CHECK(body.contains("user") && body["user"].is_string(), bad_input,
                           "user: expected a string");
              const std::string user = body["user"].get<std::string>();
              MMFUSE_CHECK(!user.empty() && user.size() <= 200, bad_input,
                           "user: expected 1 to 200 characters");
              send_json(res,
                        alarm_json(p.store().acknowledge_alarm(id, user), evidence_root(ctx, p)));
            });

  add_route(http, ctx, "GET", "/v1/rounds/current",
            [&ctx](const httplib::Request&, httplib::Response& res) {
              PlantService& p = plant(ctx);
              const auto rounds = p.store().list_rounds(1);
              if (rounds.empty())
                return send_json(res, {{"round_id", nullptr},
                                       {"status", "none"},
                                       {"total", 0},
                                       {"done", 0},
                                       {"started", nullptr},
                                       {"finished", nullptr}});
              const store::RoundInfo& r = rounds.front();
              send_json(res, {{"round_id", r.id},
                              {"status", store::round_status_name(r.status)},
                              {"total", r.total},
                              {"done", r.position},
                              {"started", iso_or_null(r.started_ms)},
                              {"finished", iso_or_null(r.finished_ms)}});
            });

  add_route(http, ctx, "GET", "/v1/stats/alarms",
            [&ctx](const httplib::Request& req, httplib::Response& res) {
              PlantService& p = plant(ctx);
              int days = 7;
              if (req.has_param("days")) {
                const std::string v = req.get_param_value("days");
                const auto r = std::from_chars(v.data(), v.data() + v.size(), days);
                MMFUSE_CHECK(
                    r.ec == std::errc() && r.ptr == v.data() + v.size() && days >= 1 && days <= 366,
                    bad_input, "days: expected an integer from 1 to 366, got \"" + v + "\"");
              }
              const int64_t now = p.store().clock().now_ms();
              constexpr int64_t kDay = 86400000;
              const int64_t first_day =
                  (now / kDay - (days - 1)) * kDay;  // midnight UTC, `days` days including today
              std::map<std::string, int64_t> by_type, by_day;
              for (int d = 0; d < days; ++d) by_day[utc_day(first_day + d * kDay)] = 0;
              for (const auto& s : p.store().alarm_stats(first_day)) {
                by_type[s.type] += s.count;
                by_day[s.day] += s.count;
              }
              Json days_json = Json::array();
              for (const auto& [day, n] : by_day) days_json.push_back({{"day", day}, {"count", n}});
              send_json(res, {{"by_type", Json(by_type)}, {"by_day", days_json}, {"days", days}});
            });

  add_route(http, ctx, "POST", "/v1/inspect",
            [&ctx](const httplib::Request& req, httplib::Response& res) {
              inspect_route(ctx, req, res);
            });
}

}  // namespace mmfuse::server
