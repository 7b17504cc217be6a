// Store on each back-end (real SQLite files, a real PostgreSQL server): schema,
// recording inspections with their alarm and outbox rows in one transaction,
// de-duplication, acknowledgement, dashboard queries, rounds and resume, bad input,
// concurrent readers and writers.
#include <sqlite3.h>

#include <atomic>
#include <thread>

#include "alarm/alarm_payload.h"
#include "mmfuse/error.h"
#include "test_postgres_util.h"

namespace fs = std::filesystem;
using namespace mmfuse;
using mmfuse::test::make_readings;
using mmfuse::test::make_record;
using mmfuse::test::StoreTempDir;
using StoreP = mmfuse::test::StoreBackendTest;

namespace {

std::string pragma_text(const fs::path& db, const std::string& pragma) {
  sqlite3* h = nullptr;
  sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(h, pragma.c_str(), -1, &s, nullptr);
  std::string out;
  if (s && sqlite3_step(s) == SQLITE_ROW)
    out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
  sqlite3_finalize(s);
  sqlite3_close(h);
  return out;
}

}  // namespace

TEST_P(StoreP, CreatesDatabaseWithSchemaVersion) {
  auto s = open();
  EXPECT_TRUE(fs::is_directory(temp() / "data" / "evidence"));
  EXPECT_EQ(s->schema_version(), store::Store::kSchemaVersion);
  EXPECT_EQ(s->latest_schema_version(), store::Store::kSchemaVersion);
  EXPECT_EQ(s->integrity_check(), "ok");
  if (postgres()) {
    EXPECT_STREQ(s->backend_kind(), "postgresql");
    EXPECT_EQ(s->location().rfind("postgresql://mmfuse@127.0.0.1:", 0), 0u) << s->location();
    EXPECT_EQ(s->query_int("SELECT count(*) FROM schema_version"), store::Store::kSchemaVersion);
  } else {
    EXPECT_STREQ(s->backend_kind(), "sqlite");
    EXPECT_TRUE(fs::is_regular_file(temp() / "data" / "mmfuse.db"));
    EXPECT_EQ(pragma_text(s->db_path(), "PRAGMA journal_mode"), "wal");
  }
  s.reset();
  // Re-opening an existing store keeps its rows and does not re-run migrations.
  auto again = open();
  EXPECT_EQ(again->schema_version(), store::Store::kSchemaVersion);
  if (postgres()) {
    EXPECT_EQ(again->query_int("SELECT count(*) FROM schema_version"), store::Store::kSchemaVersion);
  }
}

TEST_P(StoreP, RecordsInspectionWithModalitiesReadingsAlarmAndOutbox) {
  store::StoreOptions opt;
  opt.sinks = {"mqtt", "webhook"};
  opt.alarm_payload = alarm::alarm_payload;
  store::FakeClock clock;
  opt.clock = &clock;
  auto s = open(opt);
  s->upsert_devices({{"pump-1", "Feed pump 1", "hall-a", "row 3", {{{"id", "p1"}}}}});
  auto rec = make_record("pump-1", true, "", {"evidence/r1/pump-1/camera.png"});
  rec.modalities[2].status = inspect::ModalityStatus::missing;
  rec.modalities[2].message = "no audio file";
  auto out = s->record_inspection(rec, make_readings("pump-1", 5));
  EXPECT_GT(out.inspection_id, 0);
  EXPECT_GT(out.alarm_id, 0);
  EXPECT_FALSE(out.deduplicated);

  auto got = s->find_inspection(out.inspection_id);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->record.device_id, "pump-1");
  EXPECT_EQ(got->record.fusion_rule, "weighted_vote");
  EXPECT_EQ(got->reading_count, 5);
  EXPECT_EQ(got->alarm_id, out.alarm_id);
  EXPECT_EQ(got->created_ms, clock.now_ms());
  ASSERT_EQ(got->record.modalities.size(), 4u);
  EXPECT_EQ(got->record.modalities[0].modality, inspect::Modality::camera);
  EXPECT_EQ(got->record.modalities[0].status, inspect::ModalityStatus::anomaly);
  EXPECT_DOUBLE_EQ(got->record.modalities[0].score, 0.9);
  EXPECT_EQ(got->record.modalities[0].detail["boxes"], 1);
  ASSERT_EQ(got->record.modalities[0].evidence.size(), 1u);
  EXPECT_EQ(got->record.modalities[2].status, inspect::ModalityStatus::missing);
  EXPECT_EQ(got->record.modalities[2].message, "no audio file");

  auto alarm = s->find_alarm(out.alarm_id);
  ASSERT_TRUE(alarm.has_value());
  EXPECT_EQ(alarm->type, "camera");
  EXPECT_EQ(alarm->area, "hall-a");
  EXPECT_EQ(alarm->dedupe_key, "pump-1|camera");
  EXPECT_DOUBLE_EQ(alarm->fused_score, 0.4);
  EXPECT_EQ(alarm->modalities["camera"]["status"], "anomaly");
  EXPECT_EQ(alarm->evidence, std::vector<std::string>{"evidence/r1/pump-1/camera.png"});

  auto outbox = s->list_outbox(out.alarm_id);
  ASSERT_EQ(outbox.size(), 2u);
  EXPECT_EQ(outbox[0].sink, "mqtt");
  EXPECT_EQ(outbox[1].sink, "webhook");
  auto payload = nlohmann::json::parse(outbox[0].payload);
  EXPECT_EQ(payload["id"], out.alarm_id);
  EXPECT_EQ(payload["device"], "pump-1");
  EXPECT_EQ(payload["area"], "hall-a");
  EXPECT_EQ(payload["type"], "camera");
  EXPECT_EQ(payload["created"], iso8601_utc(clock.now_ms()));
  auto backlog = s->outbox_backlog();
  EXPECT_EQ(backlog.total, 2);
  EXPECT_EQ(backlog.by_sink["mqtt"], 1);

  // A normal inspection raises nothing.
  auto ok = s->record_inspection(make_record("pump-1", false));
  EXPECT_EQ(ok.alarm_id, 0);
  EXPECT_EQ(s->list_alarms().size(), 1u);
  EXPECT_EQ(s->list_inspections().size(), 2u);
  EXPECT_EQ(s->list_inspections({"pump-1", "", 0, 0, 1}).size(), 1u);
  EXPECT_EQ(s->list_inspections({"other", "", 0, 0, 100}).size(), 0u);
  auto c = s->counts();
  EXPECT_EQ(c.devices, 1);
  EXPECT_EQ(c.inspections, 2);
  EXPECT_EQ(c.readings, 5);
  EXPECT_EQ(c.alarms, 1);
  EXPECT_EQ(c.open_alarms, 1);
  EXPECT_EQ(c.outbox_pending, 2);
}

TEST_P(StoreP, DeduplicatesAlarmsPerDeviceAndTypeWithinCooldown) {
  store::FakeClock clock;
  store::StoreOptions opt;
  opt.clock = &clock;
  opt.sinks = {"mqtt"};
  opt.alarm_payload = alarm::alarm_payload;
  opt.dedupe_cooldown_ms = 60'000;
  auto s = open(opt);
  auto first = s->record_inspection(make_record("m1", true));
  clock.advance_ms(30'000);
  auto second = s->record_inspection(make_record("m1", true));
  EXPECT_TRUE(second.deduplicated);
  EXPECT_EQ(second.alarm_id, first.alarm_id);
  // Another device, or another type on the same device, is its own alarm.
  auto other = s->record_inspection(make_record("m2", true));
  EXPECT_FALSE(other.deduplicated);
  auto ir = make_record("m1", true);
  ir.alarm_type = "infrared";
  auto third = s->record_inspection(ir);
  EXPECT_FALSE(third.deduplicated);
  EXPECT_NE(third.alarm_id, first.alarm_id);
  // After the cooldown (measured from the alarm's creation) the key alarms again.
  clock.advance_ms(30'001);
  auto fourth = s->record_inspection(make_record("m1", true));
  EXPECT_FALSE(fourth.deduplicated);
  EXPECT_NE(fourth.alarm_id, first.alarm_id);

  auto a = s->find_alarm(first.alarm_id);
  EXPECT_EQ(a->repeats, 1);
  EXPECT_EQ(a->last_seen_ms, a->created_ms + 30'000);
  EXPECT_EQ(s->list_alarms().size(), 4u);
  // Only raised alarms are queued: a merged one sends nothing new.
  EXPECT_EQ(s->outbox_backlog().total, 4);
}

TEST_P(StoreP, AcknowledgeIsIdempotentAndUnknownIdIsNotFound) {
  store::FakeClock clock;
  store::StoreOptions opt;
  opt.clock = &clock;
  auto s = open(opt);
  const int64_t id = s->record_inspection(make_record("m1", true)).alarm_id;
  EXPECT_EQ(s->list_alarms({false, "", 0, 0, 100}).size(), 1u);
  auto a = s->acknowledge_alarm(id, "alice");
  EXPECT_EQ(a.acknowledged_by, "alice");
  EXPECT_EQ(a.acknowledged_at_ms, clock.now_ms());
  clock.advance_ms(5000);
  auto b = s->acknowledge_alarm(id, "bob");  // a repeat keeps the first acknowledgement
  EXPECT_EQ(b.acknowledged_by, "alice");
  EXPECT_EQ(b.acknowledged_at_ms, a.acknowledged_at_ms);
  EXPECT_EQ(s->list_alarms({false, "", 0, 0, 100}).size(), 0u);
  EXPECT_EQ(s->list_alarms({true, "", 0, 0, 100}).size(), 1u);
  try {
    s->acknowledge_alarm(id + 100, "alice");
    FAIL() << "expected not_found";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::not_found);
  }
  EXPECT_THROW(s->acknowledge_alarm(id, ""), Error);
}

TEST_P(StoreP, DeviceStatusStatsAndTrends) {
  store::FakeClock clock(1'700'000'000'000);  // 2023-11-14T22:13:20Z
  store::StoreOptions opt;
  opt.clock = &clock;
  auto s = open(opt);
  s->upsert_devices({{"a", "A", "z1", "", nlohmann::json::array()},
                     {"b", "B", "z1", "", nlohmann::json::array()},
                     {"c", "C", "z2", "", nlohmann::json::array()}});
  s->record_inspection(make_record("a", true));
  s->record_inspection(make_record("a", false), make_readings("a", 10));
  auto br = make_record("b", true);
  br.alarm_type = "sound";
  s->record_inspection(br);
  clock.advance_ms(store::kMsPerDay);
  s->record_inspection(make_record("b", true));

  auto st = s->device_status();
  ASSERT_EQ(st.size(), 3u);
  EXPECT_EQ(st[0].device.id, "a");
  EXPECT_FALSE(st[0].alarm);  // latest inspection was normal
  EXPECT_EQ(st[0].open_alarms, 1);
  EXPECT_EQ(st[0].modality_status["camera"], "ok");
  EXPECT_TRUE(st[1].alarm);
  EXPECT_EQ(st[1].alarm_type, "camera");
  EXPECT_EQ(st[1].open_alarms, 2);
  EXPECT_EQ(st[2].last_inspection_id, 0);  // never inspected

  auto stats = s->alarm_stats();
  ASSERT_EQ(stats.size(), 3u);
  EXPECT_EQ(stats[0].day, "2023-11-14");
  EXPECT_EQ(stats[0].type, "camera");
  EXPECT_EQ(stats[0].count, 1);
  EXPECT_EQ(stats[1].type, "sound");
  EXPECT_EQ(stats[2].day, "2023-11-15");
  EXPECT_EQ(s->alarm_stats(clock.now_ms()).size(), 1u);

  auto raw = s->sensor_trend("a", "temperature", 0, 0);
  ASSERT_EQ(raw.size(), 10u);
  EXPECT_DOUBLE_EQ(raw[3].value, 23.0);
  auto coarse = s->sensor_trend("a", "temperature", 0, 5);
  ASSERT_LE(coarse.size(), 5u);
  int64_t samples = 0;
  for (const auto& p : coarse) samples += p.samples;
  EXPECT_EQ(samples, 10);
  EXPECT_DOUBLE_EQ(coarse.front().min, 20.0);
  EXPECT_EQ(s->sensor_trend("a", "temperature", 1500, 0).size(), 5u);
  EXPECT_EQ(s->sensor_channels("a"), std::vector<std::string>{"temperature"});
}

TEST_P(StoreP, RoundsTrackProgressAndResume) {
  store::FakeClock clock;
  store::StoreOptions opt;
  opt.clock = &clock;
  {
    auto s = open(opt);
    EXPECT_FALSE(s->resume_round().has_value());
    auto r = s->begin_round(3);
    EXPECT_EQ(r.id.rfind("round-", 0), 0u);
    auto r2 = s->begin_round(3);  // same second: still a distinct id
    EXPECT_NE(r2.id, r.id);
    s->finish_round(r2.id, store::RoundStatus::aborted);
    s->record_inspection(make_record("d1", false, r.id));
    s->record_inspection(make_record("d2", true, r.id));
    EXPECT_THROW(s->begin_round(1, r.id), Error);
    EXPECT_THROW(s->finish_round("nope"), Error);
  }
  // "Restart": the round is still running, with what it already did.
  auto s = open(opt);
  auto r = s->resume_round();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->position, 2);
  EXPECT_EQ(r->total, 3);
  ASSERT_EQ(r->done.size(), 2u);
  EXPECT_EQ(r->done[0], std::make_pair(std::string("d1"), std::string("p1")));
  s->record_inspection(make_record("d3", false, r->id));
  s->finish_round(r->id);
  auto done = s->round_progress(r->id);
  EXPECT_EQ(done.status, store::RoundStatus::finished);
  EXPECT_EQ(done.position, 3);
  EXPECT_EQ(done.finished_ms, clock.now_ms());
  EXPECT_FALSE(s->resume_round().has_value());
  EXPECT_EQ(s->list_rounds().size(), 2u);
}

TEST_P(StoreP, RejectsBadInputWithoutWritingAnything) {
  auto s = open();
  auto dup = make_record("m1", true);
  dup.modalities.push_back(dup.modalities[0]);
  EXPECT_THROW(s->record_inspection(dup), Error);
  EXPECT_THROW(s->record_inspection(make_record("", false)), Error);
  auto nan = make_record("m1", false);
  nan.modalities[1].score = std::nan("");
  EXPECT_THROW(s->record_inspection(nan), Error);
  std::vector<store::SensorReading> bad = {{"m1", "p1", "", 0, 1.0}};
  EXPECT_THROW(s->record_inspection(make_record("m1", false), bad), Error);
  EXPECT_EQ(s->list_inspections().size(), 0u);
  EXPECT_EQ(s->query_int("SELECT count(*) FROM inspection_modalities"), 0);
  EXPECT_EQ(s->list_alarms().size(), 0u);
}

TEST_P(StoreP, InvalidUtf8InMessagesDoesNotCostTheInspection) {
  store::StoreOptions opt;
  opt.sinks = {"mqtt"};
  opt.alarm_payload = alarm::alarm_payload;
  auto s = open(opt);
  auto rec = make_record("m1", true, "", {"evidence/caf\xe9.png"});
  rec.modalities[0].message = "defect near caf\xe9";  // Latin-1 bytes
  rec.modalities[0].detail = {{"file", "caf\xe9"}};
  auto out = s->record_inspection(rec);
  ASSERT_GT(out.alarm_id, 0);
  auto payload = nlohmann::json::parse(s->list_outbox(out.alarm_id).at(0).payload);
  EXPECT_EQ(payload["modalities"]["camera"]["message"], "defect near caf\uFFFD");
  EXPECT_EQ(s->find_inspection(out.inspection_id)->record.modalities[0].detail["file"],
            "caf\uFFFD");
  store::StoreOptions twice;
  twice.sinks = {"mqtt", "mqtt"};  // would queue every alarm twice
  twice.alarm_payload = alarm::alarm_payload;
  EXPECT_THROW(open(twice, "x"), Error);
}

// The store persists the payload its caller builds and never builds one itself:
// sinks without a payload builder are refused, and the outbox row holds exactly
// the builder's text.
TEST_P(StoreP, OutboxPayloadComesFromTheCaller) {
  store::StoreOptions none;
  none.sinks = {"mqtt"};
  try {
    open(none, "a");
    FAIL() << "expected bad_input";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    EXPECT_NE(std::string(e.what()).find("alarm_payload"), std::string::npos) << e.what();
  }
  auto plain = open({}, "b");
  EXPECT_THROW(plain->set_sinks({"mqtt"}), Error);
  plain->set_sinks({});

  store::StoreOptions opt;
  opt.sinks = {"webhook"};
  opt.alarm_payload = [](const store::AlarmRow& a) {
    return "alarm " + std::to_string(a.id) + " " + a.device_id;
  };
  auto s = open(opt, "c");
  auto out = s->record_inspection(make_record("m1", true));
  ASSERT_GT(out.alarm_id, 0);
  auto rows = s->list_outbox(out.alarm_id);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].payload, "alarm " + std::to_string(out.alarm_id) + " m1");
}

TEST(Store, RefusesGarbageFiles) {
  StoreTempDir dir;
  fs::create_directories(dir.path() / "junk");
  mmfuse::test::touch_file(dir.path() / "junk" / "mmfuse.db", std::string(4096, 'x'));
  try {
    store::Store::open(dir.path() / "junk");
    FAIL() << "expected bad_input";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    EXPECT_NE(std::string(e.what()).find("mmfuse.db"), std::string::npos) << e.what();
  }
}

TEST_P(StoreP, RefusesNewerSchemas) {
  { auto s = open({}, "new"); }
  if (postgres()) {
    const std::string url = location("new").conninfo;
    server()->exec(url.substr(url.rfind('/') + 1),
                   "INSERT INTO schema_version(version, applied_ms) VALUES(99, 0)");
  } else {
    sqlite3* h = nullptr;
    sqlite3_open((temp() / "new" / "mmfuse.db").c_str(), &h);
    sqlite3_exec(h, "PRAGMA user_version=99", nullptr, nullptr, nullptr);
    sqlite3_close(h);
  }
  try {
    open({}, "new");
    FAIL() << "expected unsupported";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::unsupported);
    EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos) << e.what();
  }
}

TEST_P(StoreP, ReadersRunWhileWriterThreadsRecord) {
  store::StoreOptions opt;
  opt.sinks = {"mqtt"};
  opt.alarm_payload = alarm::alarm_payload;
  opt.dedupe_cooldown_ms = 0;
  auto s = open(opt);
  constexpr int kWriters = 2, kEach = 60;
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w)
    threads.emplace_back([&, w] {
      const std::string device = std::string(1, 'w') + std::to_string(w);
      for (int i = 0; i < kEach; ++i)
        s->record_inspection(make_record(device, i % 3 == 0), make_readings(device, 3));
    });
  std::thread reader([&] {
    while (!done.load()) {
      // Every snapshot is consistent: each listed inspection has its four modalities.
      for (const auto& row : s->list_inspections({"", "", 0, 0, 20}))
        ASSERT_EQ(row.record.modalities.size(), 4u);
      s->device_status();
      s->outbox_backlog();
      reads.fetch_add(1);
    }
  });
  for (auto& t : threads) t.join();
  done = true;
  reader.join();
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(s->query_int("SELECT count(*) FROM inspections"), kWriters * kEach);
  EXPECT_EQ(s->query_int("SELECT count(*) FROM sensor_readings"), kWriters * kEach * 3);
  EXPECT_EQ(s->outbox_backlog().total, kWriters * kEach / 3);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreP,
                         ::testing::Values(mmfuse::test::StoreBackend::sqlite,
                                           mmfuse::test::StoreBackend::postgres),
                         mmfuse::test::backend_name);
