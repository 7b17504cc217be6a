// Sensor tables from CSV text: a header row, an optional time column, numeric
// channels, and optional label columns (kept apart so they never feed a
// detector). The delimiter is ',', ';' or tab, detected from the header unless
// given. With ';' or tab as delimiter a decimal comma ("3,14") is accepted.
// Fields may be double-quoted ("" inside quotes is a quote); a quoted field
// cannot span lines.
//
// A data row is bad when it has the wrong number of fields, an empty channel
// value, or a value that is not a finite number (NaN and infinities included):
// with reject_bad_rows the first one throws ErrorKind::bad_input naming the
// file, line and column; otherwise it is skipped and listed in bad_rows.
// Blank lines are ignored. NaN never reaches a SensorTable.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/strings.h"
#include "sensor/matrix.h"

namespace mmfuse::sensor {

struct CsvOptions {
  char delimiter = 0;  // 0: detect from the header (most frequent of ',', ';', tab)
  // Time column name; "" = the first of datetime/timestamp/time/date present
  // (case-insensitive), "-" = the file has none.
  std::string time_column;
  // Columns kept as labels, not channels (names compared case-insensitively).
  std::vector<std::string> label_columns = {"anomaly", "changepoint", "label"};
  bool reject_bad_rows = false;
};

struct BadRow {
  size_t line = 0;  // 1-based line number in the file
  size_t row = 0;   // 0-based data-row number (non-blank lines after the header)
  std::string reason;
};

struct SensorTable {
  std::string source;                 // file name, for messages
  std::vector<std::string> channels;  // channel column names, in file order
  std::string time_column;            // "" if none
  std::vector<std::string> times;     // one raw time string per row (if a time column)
  Matrix values;                      // rows x channels, all finite
  std::vector<std::string> label_names;
  Matrix labels;              // rows x label columns, all finite
  std::vector<size_t> lines;  // 1-based file line of each row
  // 0-based data-row number of each row: blank lines are not counted, skipped
  // bad rows are (so they leave gaps in the numbering).
  std::vector<size_t> row_numbers;
  std::vector<BadRow> bad_rows;  // skipped rows (empty with reject_bad_rows)

  size_t rows() const { return values.rows; }
  // Index of a label column by name (case-insensitive), or -1.
  int label_index(const std::string& name) const;
};

// Parses CSV text; `source` names it in messages.
SensorTable parse_csv(std::string_view text, const std::string& source, const CsvOptions& options);
// Reads and parses a file (ErrorKind::not_found if it cannot be opened).
SensorTable read_csv(const std::filesystem::path& path, const CsvOptions& options);

}  // namespace mmfuse::sensor
