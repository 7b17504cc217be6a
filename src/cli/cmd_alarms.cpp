// `mmfuse alarms` and `mmfuse store`: look after an inspection data directory from the
// shell (see docs/store.md, docs/alarms.md).
//   alarms list     alarms, newest first (filters: --open/--acked, --device, --limit)
//   alarms ack      acknowledge one alarm (idempotent)
//   alarms stats    counts per UTC day and type
//   alarms deliver  push the outbox through MQTT and/or a webhook once, then exit
//   store info      schema version, integrity, row counts, outbox backlog
//   store prune     retention: delete rows and evidence older than N days
//   store bench     record and query figures on a scratch data directory
//   store sync      forward an edge store to a central one (once, or every S seconds)
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <memory>
#include <thread>

#include "alarm/mqtt_sink.h"
#include "alarm/outbox_dispatcher.h"
#include "alarm/webhook_sink.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "mmfuse/error.h"
#include "store/edge_sync.h"
#include "store/store.h"
#include "tools/store_bench.h"

namespace fs = std::filesystem;

namespace mmfuse::cli {
namespace {

// Where a command's store is: --store URL, else --data DIR (SQLite there).
struct StoreFlags {
  std::string data_dir, url;
};

// Opens an existing store: these commands never create a SQLite file by accident.
// A PostgreSQL database gets the schema if it has none yet.
std::unique_ptr<store::Store> open_existing(const StoreFlags& f,
                                            const store::StoreOptions& options = {}) {
  const std::string url = store_url_or_env(f.url, !f.data_dir.empty());
  MMFUSE_CHECK(!f.data_dir.empty() || !url.empty(), bad_input, "give --data DIR or --store URL");
  store::StoreLocation where;
  if (!url.empty()) {
    where = store::parse_store_url(url);
    if (!f.data_dir.empty()) where.data_dir = f.data_dir;
  } else {
    where = store::sqlite_location(f.data_dir);
  }
  std::error_code ec;
  if (where.kind == store::StoreKind::sqlite && !fs::is_regular_file(where.db_file, ec))
    throw_error(ErrorKind::not_found, where.db_file.parent_path().string() +
                                          ": no mmfuse store here (no " +
                                          where.db_file.filename().string() + ")");
  return store::Store::open(where, options);
}

void add_data_option(CLI::App* cmd, StoreFlags* flags) {
  cmd->add_option("--data", flags->data_dir, "Data directory holding mmfuse.db (and evidence/)");
  add_store_option(cmd, &flags->url);
}

void register_alarm_commands(CLI::App& app) {
  auto* alarms = app.add_subcommand("alarms", "Inspection alarms in a data directory");
  alarms->require_subcommand(1);

  struct ListFlags {
    StoreFlags where;
    std::string device;
    bool open = false, acked = false;
    int limit = 100;
  };
  auto lf = std::make_shared<ListFlags>();
  auto* list = alarms->add_subcommand("list", "List alarms, newest first");
  add_data_option(list, &lf->where);
  list->add_flag("--open", lf->open, "Only unacknowledged alarms");
  list->add_flag("--acked", lf->acked, "Only acknowledged alarms");
  list->add_option("--device", lf->device, "Only this device's alarms");
  list->add_option("--limit", lf->limit, "At most this many (default 100)")
      ->check(CLI::Range(1, 1000000));
  list->callback([lf] {
    MMFUSE_CHECK(!(lf->open && lf->acked), bad_input, "--open and --acked exclude each other");
    auto s = open_existing(lf->where);
    store::AlarmFilter f;
    if (lf->open) f.acknowledged = false;
    if (lf->acked) f.acknowledged = true;
    f.device_id = lf->device;
    f.limit = lf->limit;
    Json out = Json::array();
    for (const auto& a : s->list_alarms(f)) out.push_back(store::to_json(a));
    print_json({{"alarms", std::move(out)}});
  });

  struct AckFlags {
    StoreFlags where;
    std::string user;
    int64_t id = 0;
  };
  auto af = std::make_shared<AckFlags>();
  auto* ack = alarms->add_subcommand("ack", "Acknowledge an alarm (repeating it changes nothing)");
  add_data_option(ack, &af->where);
  ack->add_option("--id", af->id, "Alarm id")->required();
  ack->add_option("--user", af->user, "Who acknowledges it")->required();
  ack->callback([af] {
    auto s = open_existing(af->where);
    print_json({{"alarm", store::to_json(s->acknowledge_alarm(af->id, af->user))}});
  });

  struct StatsFlags {
    StoreFlags where;
    int days = 0;
  };
  auto sf = std::make_shared<StatsFlags>();
  auto* stats = alarms->add_subcommand("stats", "Alarm counts per UTC day and type");
  add_data_option(stats, &sf->where);
  stats->add_option("--days", sf->days, "Only the last N days (default: all)")
      ->check(CLI::Range(0, 100000));
  stats->callback([sf] {
    auto s = open_existing(sf->where);
    const int64_t since =
        sf->days > 0 ? s->clock().now_ms() - static_cast<int64_t>(sf->days) * store::kMsPerDay : 0;
    Json out = Json::array();
    for (const auto& st : s->alarm_stats(since))
      out.push_back({{"day", st.day}, {"type", st.type}, {"count", st.count}});
    print_json({{"stats", std::move(out)}});
  });

  struct DeliverFlags {
    StoreFlags where;
    std::string mqtt_host = "127.0.0.1", mqtt_prefix = "mmfuse", webhook, bearer;
    int mqtt_port = 0;
    int wait_ms = 3000;
  };
  auto df = std::make_shared<DeliverFlags>();
  auto* deliver = alarms->add_subcommand(
      "deliver", "Deliver the due outbox rows once through the given sinks, then exit");
  add_data_option(deliver, &df->where);
  deliver->add_option("--mqtt-host", df->mqtt_host, "MQTT broker host (default 127.0.0.1)");
  deliver->add_option("--mqtt-port", df->mqtt_port, "MQTT broker port (enables the mqtt sink)")
      ->check(CLI::Range(1, 65535));
  deliver->add_option("--mqtt-prefix", df->mqtt_prefix, "Topic prefix (default mmfuse)");
  deliver->add_option("--webhook", df->webhook, "Webhook URL (enables the webhook sink)");
  deliver->add_option("--bearer", df->bearer, "Webhook bearer token");
  deliver->add_option("--wait-ms", df->wait_ms, "How long to wait for the broker connection")
      ->check(CLI::Range(0, 600000));
  deliver->callback([df] {
    MMFUSE_CHECK(df->mqtt_port > 0 || !df->webhook.empty(), bad_input,
                 "alarms deliver: give --mqtt-port and/or --webhook");
    auto s = open_existing(df->where);
    std::vector<std::shared_ptr<alarm::Sink>> sinks;
    if (df->mqtt_port > 0) {
      alarm::MqttOptions mo;
      mo.host = df->mqtt_host;
      mo.port = df->mqtt_port;
      mo.topic_prefix = df->mqtt_prefix;
      mo.client_id = "mmfuse-deliver";
      auto mqtt = std::make_shared<alarm::MqttSink>(mo);
      mqtt->wait_connected(df->wait_ms);
      sinks.push_back(mqtt);
    }
    if (!df->webhook.empty()) {
      alarm::WebhookOptions wo;
      wo.url = df->webhook;
      wo.bearer_token = df->bearer;
      sinks.push_back(std::make_shared<alarm::WebhookSink>(wo));
    }
    alarm::OutboxDispatcher dispatcher(*s, sinks);
    int delivered = 0;
    for (int n; (n = dispatcher.deliver_due_once()) > 0;) delivered += n;
    print_json({{"delivered", delivered},
                {"failures", dispatcher.stats().failures},
                {"backlog", store::to_json(s->outbox_backlog())}});
  });
}

void register_store_bench(CLI::App* st);
void register_store_sync(CLI::App* st);

void register_store_commands(CLI::App& app) {
  auto* st = app.add_subcommand("store", "The inspection store (data directory)");
  st->require_subcommand(1);

  auto info_where = std::make_shared<StoreFlags>();
  auto* info = st->add_subcommand("info", "Schema version, integrity, counts, outbox backlog");
  add_data_option(info, info_where.get());
  info->callback([info_where] {
    auto s = open_existing(*info_where);
    const auto c = s->counts();
    Json forward = Json::array();  // the centres this store forwards to (edge sync)
    for (const auto& m : store::EdgeSync::marks(*s)) forward.push_back(store::to_json(m));
    Json edges = Json::array();  // the edges that forward into this store (a centre)
    for (const auto& m : store::EdgeSync::edges(*s)) edges.push_back(store::to_json(m));
    print_json({{"data_dir", s->data_dir().string()},
                {"backend", s->backend_kind()},
                {"store", s->location()},
                {"schema_version", s->schema_version()},
                {"integrity", s->integrity_check()},
                {"devices", c.devices},
                {"open_alarms", c.open_alarms},
                {"rounds", c.rounds},
                {"counts", store::to_json(c)},
                {"outbox", store::to_json(s->outbox_backlog())},
                {"forward", forward},
                {"edges", edges}});
  });

  struct PruneFlags {
    StoreFlags where;
    int days = 7;
  };
  auto pf = std::make_shared<PruneFlags>();
  auto* prune = st->add_subcommand("prune", "Delete rows and evidence older than N days");
  add_data_option(prune, &pf->where);
  prune->add_option("--days", pf->days, "Retention in days (default 7)")
      ->check(CLI::Range(1, 100000));
  prune->callback([pf] {
    auto s = open_existing(pf->where);
    print_json({{"pruned", store::to_json(s->prune(pf->days))}});
  });
  register_store_bench(st);
  register_store_sync(st);
}

std::atomic<bool> g_sync_stop{false};
void on_sync_signal(int) {
  g_sync_stop = true;
}

void register_store_sync(CLI::App* st) {
  struct SyncFlags {
    StoreFlags where;
    std::string to, edge_id;
    int batch = 200;
    double interval = 0.0;
    bool forget = false;
  };
  auto f = std::make_shared<SyncFlags>();
  auto* sync = st->add_subcommand(
      "sync", "Forward this (edge) store's inspections, alarms and rounds to a central store");
  add_data_option(sync, &f->where);
  sync->add_option("--to", f->to, "The central store (postgresql://user@host:5432/db)")->required();
  sync->add_option("--edge-id", f->edge_id,
                   "This edge's name at the centre (default: the one kept, else the host name)");
  sync->add_option("--batch", f->batch, "Inspections per centre transaction (default 200)")
      ->check(CLI::Range(1, 100000));
  sync->add_option("--interval", f->interval,
                   "Keep forwarding every S seconds until interrupted (errors are retried)")
      ->check(CLI::Range(0.0, 86400.0));
  sync->add_flag("--forget", f->forget,
                 "Remove the mark for --to: retention stops keeping rows for that centre");
  sync->callback([f] {
    auto edge = open_existing(f->where);
    if (f->forget) {
      print_json({{"forgotten", store::EdgeSync::forget_target(*edge, f->to)}});
      return;
    }
    store::ForwardOptions fo;
    fo.edge_id = f->edge_id;
    fo.batch_inspections = f->batch;
    if (f->interval <= 0.0) {
      // Once: every failure is an error (exit 2 for an unreachable centre or one whose
      // schema is newer). The centre becomes a forward target (retention waits for it)
      // only once it answered: a mistyped URL must not hold the edge's disk.
      std::unique_ptr<store::Store> centre;
      try {
        centre =
            with_flag("--to", [&] { return store::Store::open(store::parse_store_url(f->to)); });
      } catch (const std::exception& e) {
        store::EdgeSync::note_failure(*edge, f->to, e.what());
        throw;
      }
      const auto rep = store::EdgeSync::forward(*edge, *centre, f->to, fo);
      Json marks = Json::array();
      for (const auto& m : store::EdgeSync::marks(*edge)) marks.push_back(store::to_json(m));
      print_json({{"forwarded", store::to_json(rep)}, {"forward", marks}});
      return;
    }
    store::EdgeForwarder fwd(*edge, f->to, fo, static_cast<int64_t>(f->interval * 1000.0),
                             [](const std::string& line) {
                               std::fprintf(stderr, "mmfuse store sync: %s\n", line.c_str());
                             });
    fwd.pass(true);  // bad configuration stops here; an unreachable centre is retried
    std::signal(SIGINT, on_sync_signal);
    std::signal(SIGTERM, on_sync_signal);
    fwd.start();
    while (!g_sync_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    fwd.stop(false);
    Json marks = Json::array();
    for (const auto& m : store::EdgeSync::marks(*edge)) marks.push_back(store::to_json(m));
    print_json({{"forward", marks}});
  });
}

void register_store_bench(CLI::App* st) {
  struct BenchFlags {
    store::StoreBenchOptions options;
    std::string dir;
    bool normal = false;
  };
  auto bf = std::make_shared<BenchFlags>();
  auto* bench = st->add_subcommand("bench", "Record/query figures on a scratch data directory");
  bench
      ->add_option("--inspections", bf->options.inspections, "Inspections to record (default 2000)")
      ->check(CLI::Range(1, 10000000));
  bench
      ->add_option("--readings", bf->options.readings,
                   "Sensor readings per inspection (default 600 = 60 s at 10 Hz)")
      ->check(CLI::Range(0, 1000000));
  bench->add_option("--devices", bf->options.devices, "Devices (default 500)")
      ->check(CLI::Range(1, 10000000));
  bench->add_flag("--normal", bf->normal, "PRAGMA synchronous=NORMAL instead of FULL");
  bench->add_option("--store", bf->options.store_url,
                    "Bench this store instead of SQLite in --dir (an empty database, e.g. "
                    "postgresql://user@host/bench)");
  bench
      ->add_option("--writers", bf->options.writers,
                   "Record from N threads at once, each with its own connections (default 1)")
      ->check(CLI::Range(1, 64));
  bench->add_option("--dir", bf->dir, "Scratch folder (default: a new one under /tmp, removed)");
  bench->callback([bf] {
    fs::path dir = bf->dir;
    const bool scratch = dir.empty();
    if (scratch)
      dir = fs::temp_directory_path() / ("mmfuse-store-bench-" + std::to_string(::getpid()));
    std::error_code ec;
    MMFUSE_CHECK(!bf->options.store_url.empty() || !fs::exists(dir / "mmfuse.db", ec), bad_input,
                 dir.string() + ": already holds a store; give an empty folder");
    bf->options.dir = dir;
    bf->options.synchronous_full = !bf->normal;
    Json out;
    try {
      out = store::bench_store(bf->options);
    } catch (...) {
      if (scratch) fs::remove_all(dir, ec);
      throw;
    }
    if (scratch) fs::remove_all(dir, ec);
    print_json(out);
  });
}

}  // namespace

void register_alarms(CLI::App& app) {
  register_alarm_commands(app);
  register_store_commands(app);
}

}  // namespace mmfuse::cli
