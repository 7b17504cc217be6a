// Row readers shared by the store's query functions: each runs one SELECT (plus the
// per-row detail it needs) on a given connection and returns the store's structs.
// Internal to src/store.
#pragma once

#include "store/sql_connection.h"
#include "store/store.h"

namespace mmfuse::store {

RoundStatus parse_round_status(const std::string& s);

namespace rows {

std::vector<DeviceInfo> devices(SqlConnection& db, const std::string& id);           // id empty = all
std::vector<RoundInfo> rounds(SqlConnection& db, const std::string& id, int limit);  // without `done`
void round_done(SqlConnection& db, RoundInfo* round);                                // fills round->done
// Rows matching the filter, or just the one with `id` when id > 0.
// with_modalities false: the inspection rows only (no modality rows read).
std::vector<InspectionRow> inspections(SqlConnection& db, const InspectionFilter& filter, int64_t id,
                                       bool with_modalities = true);
std::vector<AlarmRow> alarms(SqlConnection& db, const AlarmFilter& filter, int64_t id);
std::vector<DeviceStatus> device_status(SqlConnection& db);
// Outbox rows of `sink` (empty = any) / of `alarm_id` (0 = any), id order.
std::vector<OutboxEntry> outbox(SqlConnection& db, const std::string& sink, int64_t alarm_id,
                                bool pending_only, int limit);

}  // namespace rows
}  // namespace mmfuse::store
