// PlantService: store, inspectors and outbox for the plant routes.
#include "server/plant_service.h"

#include "alarm/alarm_payload.h"
#include "alarm/mqtt_sink.h"
#include "alarm/webhook_sink.h"
#include "core/thread_pool.h"
#include "inspect/store_rows.h"
#include "mmfuse/error.h"
#include "server/http_util.h"

namespace mmfuse::server {

using inspect::device_infos;
using inspect::readings_of;

PlantService::PlantService(const ServerConfig& config, std::shared_ptr<ThreadPool> pool)
    : pool_(std::move(pool)) {
  if (!config.plant_file.empty()) {
    plant_ = inspect::load_plant(config.plant_file);
    data_dir_ = plant_->data_dir;
  }
  if (!config.data_dir.empty()) data_dir_ = config.data_dir;
  if (!config.store_url.empty()) {
    location_ = store::parse_store_url(config.store_url);
    if (!data_dir_.empty()) location_.data_dir = data_dir_;  // evidence stays with the plant
    if (data_dir_.empty() && location_.kind == store::StoreKind::sqlite)
      data_dir_ = location_.data_dir;
  } else {
    MMFUSE_CHECK(!data_dir_.empty(), bad_input,
                 "plant: no data folder (set data_dir, the plant's data_dir or store)");
    location_ = store::sqlite_location(data_dir_);
  }
}

PlantService::~PlantService() {
  stop();
}

void PlantService::start(Metrics& metrics) {
  store::StoreOptions options;
  std::vector<std::shared_ptr<alarm::Sink>> sinks;
  if (plant_) {
    options.retention_days = plant_->retention_days;
    options.dedupe_cooldown_ms = static_cast<int64_t>(plant_->alarms.cooldown_s * 1000.0);
    if (const auto& m = plant_->alarms.mqtt) {
      alarm::MqttOptions o;
      o.host = m->host;
      o.port = m->port;
      o.topic_prefix = m->topic_prefix;
      o.client_id = "mmfuse-serve";
      sinks.push_back(std::make_shared<alarm::MqttSink>(o));
    }
    if (const auto& w = plant_->alarms.webhook) {
      alarm::WebhookOptions o;
      o.url = w->url;
      o.timeout_ms = static_cast<int>(w->timeout_s * 1000.0);
      sinks.push_back(std::make_shared<alarm::WebhookSink>(o));
    }
    for (const auto& s : sinks) options.sinks.push_back(s->name());
    options.alarm_payload = alarm::alarm_payload;
  }
  store_ = store::Store::open(location_, options);
  if (plant_) {
    store_->upsert_devices(device_infos(*plant_));
    // Lazy: a replica fits a point on its first POST /v1/inspect, not all of them at start.
    runner_ = std::make_unique<inspect::PlantRunner>(
        *plant_, *pool_,
        [](const std::string& line) {
          std::fprintf(stderr, "mmfuse serve: plant: %s\n", line.c_str());
        },
        inspect::Fitting::lazy);
  }
  if (!sinks.empty()) {
    dispatcher_ = std::make_unique<alarm::OutboxDispatcher>(*store_, sinks);
    dispatcher_->start();
  }
  store::Store* db = store_.get();
  metrics.add_sampled(
      "mmfuse_inspections_recorded_total", "counter",
      "Inspections recorded through POST /v1/inspect by this process.", [this] {
        return std::vector<std::pair<std::string, double>>{{"", double(inspections_)}};
      });
  metrics.add_sampled("mmfuse_alarms_raised_total", "counter",
                      "Alarms raised (or merged by de-duplication) by inspections of this process.",
                      [this] {
                        return std::vector<std::pair<std::string, double>>{{"", double(alarms_)}};
                      });
  metrics.add_sampled("mmfuse_store_rows", "gauge", "Rows in the inspection store by kind.", [db] {
    const store::StoreCounts n = db->counts();
    return std::vector<std::pair<std::string, double>>{
        {"kind=\"devices\"", double(n.devices)},
        {"kind=\"inspections\"", double(n.inspections)},
        {"kind=\"readings\"", double(n.readings)},
        {"kind=\"alarms\"", double(n.alarms)}};
  });
  metrics.add_sampled("mmfuse_alarms_open", "gauge", "Unacknowledged alarms in the store.", [db] {
    return std::vector<std::pair<std::string, double>>{{"", double(db->counts().open_alarms)}};
  });
  metrics.add_sampled("mmfuse_devices", "gauge",
                      "Devices by the status of their latest inspection.", [db] {
                        std::map<std::string, double> by;
                        for (const char* s : {"ok", "alarm", "missing", "unknown"}) by[s] = 0;
                        for (const auto& s : db->device_status()) {
                          bool missing = false;
                          for (const auto& [m, st] : s.modality_status)
                            missing = missing || st == "missing" || st == "error";
                          by[s.last_inspection_id == 0 ? "unknown"
                             : s.alarm                 ? "alarm"
                             : missing                 ? "missing"
                                                       : "ok"] += 1;
                        }
                        std::vector<std::pair<std::string, double>> out;
                        for (const auto& [k, v] : by) out.emplace_back("status=\"" + k + "\"", v);
                        return out;
                      });
  metrics.add_sampled(
      "mmfuse_outbox_backlog", "gauge", "Alarm outbox rows not yet delivered, per sink.", [db] {
        const auto b = db->outbox_backlog();
        std::vector<std::pair<std::string, double>> out{{"sink=\"all\"", double(b.total)}};
        for (const auto& [sink, n] : b.by_sink)
          out.emplace_back("sink=\"" + escape_label(sink) + "\"", double(n));
        return out;
      });
  metrics.add_sampled("mmfuse_outbox_oldest_age_seconds", "gauge",
                      "Age of the oldest undelivered outbox row (0 when none).", [db] {
                        const auto b = db->outbox_backlog();
                        const double age =
                            b.oldest_created_ms == 0
                                ? 0.0
                                : double(db->clock().now_ms() - b.oldest_created_ms) / 1000.0;
                        return std::vector<std::pair<std::string, double>>{{"", age}};
                      });
  started_ = true;
}

void PlantService::stop() {
  if (dispatcher_) dispatcher_->stop(true);
}

std::string PlantService::store_problem() const {
  if (!started_) return "";
  try {
    store_->query_int("SELECT 1");
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

store::Store& PlantService::store() {
  if (!started_)
    throw HttpError(503, "unavailable", "the plant store is still opening; retry shortly");
  return *store_;
}

const inspect::PointInspector& PlantService::inspector(const std::string& device,
                                                       const std::string& point) {
  store();
  if (!runner_)
    throw HttpError(404, "not_found", "no plant file is configured: inspections cannot run here");
  const inspect::PointInspector* found = runner_->find(device, point);
  if (!found) {
    bool device_known = false;
    for (const auto& d : plant_->devices) device_known = device_known || d.id == device;
    throw_error(ErrorKind::not_found, device_known
                                          ? "device " + device + " has no point \"" + point + "\""
                                          : "no device \"" + device + "\" in the plant");
  }
  return *found;
}

store::RecordOutcome PlantService::record(const inspect::InspectionRecord& record) {
  const store::RecordOutcome out = store().record_inspection(record, readings_of(record));
  ++inspections_;
  if (out.alarm_id != 0) {
    ++alarms_;
    if (dispatcher_) dispatcher_->notify();
  }
  return out;
}

}  // namespace mmfuse::server
