// Row writers shared by record_inspection (store.cpp) and the edge -> centre import
// (edge_sync.cpp). Internal to src/store.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "store/sql_connection.h"
#include "store/store.h"

namespace mmfuse::store {

// The readings' rows (series looked up or created once per (device, point, channel)),
// many rows per INSERT; inspection_id <= 0 = free readings.
void insert_readings(SqlConnection& db, const std::vector<SensorReading>& readings,
                     int64_t inspection_id);
// One evidence_refs row per path (made absolute under data_dir) naming the inspection
// or the alarm (the other id <= 0).
void insert_evidence_refs(SqlConnection& db, const std::filesystem::path& data_dir,
                          const std::vector<std::string>& paths, int64_t inspection_id,
                          int64_t alarm_id);

}  // namespace mmfuse::store
