// The dashboard's store queries on each back-end, as rewritten for weeks of history
// (docs/scale-out.md "Dashboard queries"): device_status in one statement equals the
// per-device answer it replaced; filtered inspection/alarm lists equal filtering the
// whole list; the synthetic history loader writes what its spec says; migration 3's
// indexes exist.
#include <algorithm>
#include <map>

#include "test_postgres_util.h"

using namespace mmfuse;
using mmfuse::test::make_readings;
using mmfuse::test::make_record;
using StoreDashboardP = mmfuse::test::StoreBackendTest;

namespace {

constexpr int kAll = 1 << 30;

// The answer device_status gave before it became one statement: one look-up per device.
std::vector<store::DeviceStatus> per_device_status(const store::Store& s) {
  std::map<std::string, store::DeviceStatus> by_id;
  for (const auto& d : s.list_devices()) by_id[d.id].device = d;
  store::InspectionFilter all;
  all.limit = kAll;
  for (const auto& r : s.list_inspections(all))
    if (!by_id.count(r.record.device_id)) by_id[r.record.device_id].device.id = r.record.device_id;
  for (auto& entry : by_id) {
    store::DeviceStatus& st = entry.second;
    store::InspectionFilter f;
    f.device_id = entry.first;
    f.limit = 1;
    const auto last = s.list_inspections(f);
    if (!last.empty()) {
      st.last_inspection_id = last[0].id;
      st.last_inspected_ms = last[0].record.finished_ms;
      st.fused_score = last[0].record.fused_score;
      st.alarm = last[0].record.alarm;
      st.alarm_type = last[0].record.alarm_type;
      for (const auto& m : last[0].record.modalities)
        st.modality_status[inspect::modality_name(m.modality)] =
            inspect::modality_status_name(m.status);
    }
    store::AlarmFilter open;
    open.acknowledged = false;
    open.device_id = entry.first;
    open.limit = kAll;
    st.open_alarms = static_cast<int64_t>(s.list_alarms(open).size());
  }
  std::vector<store::DeviceStatus> out;
  for (auto& entry : by_id) out.push_back(std::move(entry.second));
  return out;
}

std::string dump(const std::vector<store::DeviceStatus>& v) {
  nlohmann::ordered_json j = nlohmann::ordered_json::array();
  for (const auto& s : v) j.push_back(store::to_json(s));
  return j.dump(1);
}

std::vector<int64_t> ids(const std::vector<store::InspectionRow>& v) {
  std::vector<int64_t> out;
  for (const auto& r : v) out.push_back(r.id);
  return out;
}

std::vector<int64_t> ids(const std::vector<store::AlarmRow>& v) {
  std::vector<int64_t> out;
  for (const auto& a : v) out.push_back(a.id);
  return out;
}

}  // namespace

TEST_P(StoreDashboardP, DeviceStatusInOneStatementEqualsThePerDeviceAnswer) {
  store::FakeClock clock(1'700'000'000'000);
  store::StoreOptions opt;
  opt.clock = &clock;
  opt.dedupe_cooldown_ms = 0;
  auto s = open(opt);
  EXPECT_EQ(dump(s->device_status()), dump(per_device_status(*s)));  // empty store
  s->upsert_devices({{"pump-2", "Pump 2", "z1", "row 1", {{{"id", "p1"}}}},
                     {"fan-1", "Fan", "z2", "", nlohmann::json::array()},
                     {"idle", "Never inspected", "z2", "", nlohmann::json::array()}});
  for (int round = 0; round < 3; ++round) {
    s->record_inspection(make_record("pump-2", round == 1), make_readings("pump-2", 3));
    auto fan = make_record("fan-1", round != 1);
    fan.modalities[2].status = inspect::ModalityStatus::missing;
    fan.alarm_type = round == 2 ? "sound" : "camera";
    s->record_inspection(fan);
    s->record_inspection(make_record("gone-7", true));  // no longer in the plant's devices
    clock.advance_ms(60'000);
  }
  s->acknowledge_alarm(s->list_alarms({false, "fan-1", 0, 0, 1})[0].id, "op");
  const auto st = s->device_status();
  EXPECT_EQ(dump(st), dump(per_device_status(*s)));
  ASSERT_EQ(st.size(), 4u);
  EXPECT_EQ(st[0].device.id, "fan-1");
  EXPECT_EQ(st[0].open_alarms, 1);
  EXPECT_EQ(st[0].alarm_type, "sound");
  EXPECT_EQ(st[0].modality_status.at("sound"), "missing");
  EXPECT_EQ(st[1].device.id, "gone-7");
  EXPECT_EQ(st[1].open_alarms, 3);
  EXPECT_EQ(st[2].device.id, "idle");
  EXPECT_EQ(st[2].last_inspection_id, 0);
  EXPECT_TRUE(st[2].modality_status.empty());
  EXPECT_EQ(st[3].device.name, "Pump 2");
  EXPECT_FALSE(st[3].alarm);
}

TEST_P(StoreDashboardP, FilteredListsEqualFilteringTheWholeList) {
  store::FakeClock clock(1'700'000'000'000);
  store::StoreOptions opt;
  opt.clock = &clock;
  opt.dedupe_cooldown_ms = 0;
  auto s = open(opt);
  for (int i = 0; i < 24; ++i) {
    s->record_inspection(make_record(i % 3 ? "a" : "b", i % 4 == 0, i < 12 ? "r1" : "r2"));
    clock.advance_ms(1000);
  }
  for (const auto& a : s->list_alarms({std::nullopt, "", 0, 0, kAll}))
    if (a.id % 2) s->acknowledge_alarm(a.id, "op");
  store::InspectionFilter all_f;
  all_f.limit = kAll;
  const auto all = s->list_inspections(all_f);
  ASSERT_EQ(all.size(), 24u);
  const int64_t since = all[10].created_ms;
  for (const std::string device : {"", "a", "b"})
    for (const std::string round : {"", "r2"})
      for (int64_t t : {int64_t{0}, since})
        for (int64_t before : {int64_t{0}, all[5].id}) {
          store::InspectionFilter f{device, round, t, before, 4};
          std::vector<int64_t> want;
          for (const auto& r : all)
            if ((device.empty() || r.record.device_id == device) &&
                (round.empty() || r.record.round_id == round) && r.created_ms >= t &&
                (before <= 0 || r.id < before) && want.size() < 4)
              want.push_back(r.id);
          const auto got = s->list_inspections(f);
          EXPECT_EQ(ids(got), want) << device << " " << round << " " << t << " " << before;
          for (const auto& r : got) EXPECT_EQ(r.record.modalities.size(), 4u);
        }
  const auto alarms = s->list_alarms({std::nullopt, "", 0, 0, kAll});
  ASSERT_EQ(alarms.size(), 6u);
  for (std::optional<bool> acked : {std::optional<bool>(), std::optional<bool>(true),
                                    std::optional<bool>(false)})
    for (const std::string device : {"", "b"})
      for (int64_t before : {int64_t{0}, alarms[1].id}) {
        std::vector<int64_t> want;
        for (const auto& a : alarms)
          if ((!acked || (a.acknowledged_at_ms > 0) == *acked) &&
              (device.empty() || a.device_id == device) && (before <= 0 || a.id < before) &&
              a.created_ms >= since && want.size() < 3)
            want.push_back(a.id);
        EXPECT_EQ(ids(s->list_alarms({acked, device, since, before, 3})), want);
      }
  EXPECT_EQ(s->list_rounds(1).size(), 0u);  // no rounds begun: the records only name them
}

TEST_P(StoreDashboardP, FusedTrendEqualsTheInspectionListOldestFirst) {
  store::FakeClock clock(1'700'000'000'000);
  store::StoreOptions opt;
  opt.clock = &clock;
  auto s = open(opt);
  for (int i = 0; i < 30; ++i) {
    auto r = make_record(i % 3 ? "a" : "b", i % 5 == 0);
    r.fused_score = 0.01 * i;
    r.finished_ms = 1'700'000'000'000 + 1000 * i + 7;
    s->record_inspection(r);
    clock.advance_ms(1000);
  }
  store::InspectionFilter all_f;
  all_f.limit = kAll;
  const auto all = s->list_inspections(all_f);
  for (const std::string device : {"a", "b", "none"})
    for (int64_t since : {int64_t{0}, all[12].created_ms})
      for (int limit : {500, 4}) {
        store::InspectionFilter f;
        f.device_id = device;
        f.since_ms = since;
        f.limit = limit;
        const auto rows = s->list_inspections(f);
        const auto got = s->fused_trend(device, since, limit);
        ASSERT_EQ(got.size(), rows.size()) << device << " " << since << " " << limit;
        for (size_t i = 0; i < got.size(); ++i) {
          const auto& want = rows[rows.size() - 1 - i].record;  // the list is newest first
          EXPECT_EQ(got[i].t_ms, want.finished_ms);
          EXPECT_DOUBLE_EQ(got[i].value, want.fused_score);
          EXPECT_EQ(got[i].samples, 1);
        }
      }
  EXPECT_EQ(s->fused_trend("a", 0, 500).size(), 20u);
}

TEST_P(StoreDashboardP, HistoryLoaderWritesItsSpecAndMigrationThreeAddsTheIndexes) {
  store::FakeClock clock(1'700'000'000'000);
  store::StoreOptions opt;
  opt.clock = &clock;
  auto s = open(opt);
  const char* index_sql = postgres()
                              ? "SELECT count(*) FROM pg_indexes WHERE indexname IN "
                                "('alarms_open_by_device', 'rounds_by_started', "
                                "'inspections_by_device_created', 'readings_by_series_value')"
                              : "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN "
                                "('alarms_open_by_device', 'rounds_by_started', "
                                "'inspections_by_device_created', 'readings_by_series_value')";
  EXPECT_EQ(s->query_int(index_sql), 4);
  store::HistorySpec spec;
  spec.days = 1;
  spec.devices = 4;
  spec.round_minutes = 60;
  spec.readings = 3;
  spec.alarm_rate = 0.05;
  const auto rep = s->generate_history(spec);
  EXPECT_EQ(rep.rounds, 24);
  EXPECT_EQ(rep.inspections, 96);
  EXPECT_EQ(rep.readings, 96 * 3);
  EXPECT_EQ(rep.start_ms, clock.now_ms() - store::kMsPerDay);
  const auto c = s->counts();
  EXPECT_EQ(c.devices, 4);
  EXPECT_EQ(c.rounds, 24);
  EXPECT_EQ(c.inspections, 96);
  EXPECT_EQ(c.readings, 96 * 3);
  EXPECT_EQ(c.alarms, rep.alarms);
  EXPECT_GT(rep.alarms, 0);
  EXPECT_EQ(s->query_int("SELECT count(*) FROM inspection_modalities"), 96 * 4);
  EXPECT_EQ(s->query_int("SELECT count(*) FROM inspections WHERE alarm = 1 AND alarm_id = 0"), 0);
  EXPECT_EQ(s->query_int("SELECT count(*) FROM outbox"), 2 * rep.alarms);
  EXPECT_EQ(c.outbox_pending, 0);
  EXPECT_EQ(s->query_int("SELECT max(created_ms) FROM inspections") < clock.now_ms(), true);
  EXPECT_EQ(s->list_rounds(1).at(0).id, "hist-23");
  EXPECT_EQ(dump(s->device_status()), dump(per_device_status(*s)));
  EXPECT_EQ(s->sensor_channels("dev-1000"), (std::vector<std::string>{"temperature", "vibration"}));
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreDashboardP,
                         ::testing::Values(mmfuse::test::StoreBackend::sqlite,
                                           mmfuse::test::StoreBackend::postgres),
                         mmfuse::test::backend_name);
