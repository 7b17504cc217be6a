#include "sensor/csv_source.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "mmfuse/error.h"

namespace mmfuse::sensor {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A value as it may be quoted in a message: printable ASCII, at most 40 characters.
std::string shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 40)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (s.size() > 40) out += "...";
  return out;
}

// Splits one line into fields; false (with `why`) for an unterminated quote.
bool split_fields(std::string_view line, char delim, std::vector<std::string>& fields,
                  std::string& why) {
  fields.clear();
  std::string field;
  size_t i = 0;
  while (true) {
    field.clear();
    // Leading blanks before an opening quote are allowed.
    size_t j = i;
    while (j < line.size() && line[j] == ' ') ++j;
    if (j < line.size() && line[j] == '"') {
      i = j + 1;
      bool closed = false;
      while (i < line.size()) {
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          closed = true;
          ++i;
          break;
        }
        field.push_back(line[i++]);
      }
      if (!closed) {
        why = "unterminated quoted field";
        return false;
      }
      while (i < line.size() && line[i] == ' ') ++i;
      if (i < line.size() && line[i] != delim) {
        why = "text after a closing quote";
        return false;
      }
    } else {
      while (i < line.size() && line[i] != delim) field.push_back(line[i++]);
    }
    fields.push_back(field);
    if (i >= line.size()) break;
    ++i;  // skip the delimiter
  }
  return true;
}

// Parses a finite number filling the whole field; decimal commas when allowed.
bool parse_number(std::string_view text, bool decimal_comma, double& out) {
  std::string buf;
  std::string_view s = trim(text);
  if (decimal_comma && s.find(',') != std::string_view::npos &&
      s.find('.') == std::string_view::npos) {
    buf.assign(s);
    std::replace(buf.begin(), buf.end(), ',', '.');
    s = buf;
  }
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && std::isfinite(out);
}

char detect_delimiter(std::string_view header) {
  // Counts candidates outside double quotes; ties go to the earlier candidate.
  const char candidates[] = {',', ';', '\t'};
  long counts[3] = {0, 0, 0};
  bool quoted = false;
  for (char ch : header) {
    if (ch == '"') quoted = !quoted;
    for (int i = 0; i < 3 && !quoted; ++i) counts[i] += ch == candidates[i];
  }
  int best = 0;
  for (int i = 1; i < 3; ++i)
    if (counts[i] > counts[best]) best = i;
  return candidates[best];
}

}  // namespace

int SensorTable::label_index(const std::string& name) const {
  for (size_t i = 0; i < label_names.size(); ++i)
    if (ascii_lower(label_names[i]) == ascii_lower(name)) return static_cast<int>(i);
  return -1;
}

SensorTable parse_csv(std::string_view text, const std::string& source, const CsvOptions& options) {
  SensorTable table;
  table.source = source;
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // BOM

  size_t pos = 0, line_no = 0;
  auto next_line = [&](std::string_view& line) {
    if (pos >= text.size()) return false;
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = end + 1;
    ++line_no;
    return true;
  };
  auto blank = [](std::string_view l) { return trim(l).empty(); };

  std::string_view header_line;
  bool have_header = false;
  while (next_line(header_line))
    if (!blank(header_line)) {
      have_header = true;
      break;
    }
  MMFUSE_CHECK(have_header, bad_input, source + ": empty file (no header row)");
  const size_t header_line_no = line_no;
  const char delim = options.delimiter != 0 ? options.delimiter : detect_delimiter(header_line);
  const bool decimal_comma = delim != ',';
  const std::string where_header = source + ":" + std::to_string(header_line_no);

  std::vector<std::string> header;
  std::string why;
  MMFUSE_CHECK(split_fields(header_line, delim, header, why), bad_input,
               where_header + ": header: " + why);
  std::set<std::string> seen;
  for (size_t i = 0; i < header.size(); ++i) {
    header[i] = std::string(trim(header[i]));
    MMFUSE_CHECK(!header[i].empty(), bad_input,
                 where_header + ": header: column " + std::to_string(i + 1) + " has no name");
    MMFUSE_CHECK(seen.insert(ascii_lower(header[i])).second, bad_input,
                 where_header + ": header: duplicate column '" + shown(header[i]) + "'");
  }

  // Roles of the columns: time, label or channel.
  int time_col = -1;
  if (options.time_column == "-") {
  } else if (!options.time_column.empty()) {
    for (size_t i = 0; i < header.size(); ++i)
      if (ascii_lower(header[i]) == ascii_lower(options.time_column))
        time_col = static_cast<int>(i);
    MMFUSE_CHECK(time_col >= 0, bad_input,
                 where_header + ": no time column named '" + options.time_column + "'");
  } else {
    for (const char* name : {"datetime", "timestamp", "time", "date"}) {
      for (size_t i = 0; i < header.size() && time_col < 0; ++i)
        if (ascii_lower(header[i]) == name) time_col = static_cast<int>(i);
      if (time_col >= 0) break;
    }
  }
  std::vector<int> role(header.size(), 0);  // 0 channel, 1 label, 2 time
  std::vector<size_t> channel_cols, label_cols;
  for (size_t i = 0; i < header.size(); ++i) {
    if (static_cast<int>(i) == time_col) {
      role[i] = 2;
      continue;
    }
    for (const auto& l : options.label_columns)
      if (ascii_lower(header[i]) == ascii_lower(l)) role[i] = 1;
    if (role[i] == 1) {
      label_cols.push_back(i);
      table.label_names.push_back(header[i]);
    } else {
      channel_cols.push_back(i);
      table.channels.push_back(header[i]);
    }
  }
  MMFUSE_CHECK(!channel_cols.empty(), bad_input,
               where_header + ": header names no channel column (only time/label columns)");
  if (time_col >= 0) table.time_column = header[static_cast<size_t>(time_col)];
  table.values = Matrix(0, channel_cols.size());
  table.labels = Matrix(0, label_cols.size());

  std::vector<std::string> fields;
  std::vector<double> values(channel_cols.size()), labels(label_cols.size());
  std::string_view line;
  size_t data_row = 0;
  while (next_line(line)) {
    if (blank(line)) continue;
    const size_t this_row = data_row++;
    std::string reason;
    if (!split_fields(line, delim, fields, why)) {
      reason = why;
    } else if (fields.size() != header.size()) {
      reason = "expected " + std::to_string(header.size()) + " fields, found " +
               std::to_string(fields.size());
    } else {
      auto parse_column = [&](size_t col, double& out) {
        const std::string_view f = trim(fields[col]);
        if (f.empty()) {
          reason = "column '" + shown(header[col]) + "': missing value";
          return false;
        }
        if (!parse_number(f, decimal_comma, out)) {
          reason = "column '" + shown(header[col]) + "': not a finite number: '" + shown(f) + "'";
          return false;
        }
        return true;
      };
      for (size_t j = 0; j < channel_cols.size() && reason.empty(); ++j)
        parse_column(channel_cols[j], values[j]);
      for (size_t j = 0; j < label_cols.size() && reason.empty(); ++j)
        parse_column(label_cols[j], labels[j]);
    }
    if (!reason.empty()) {
      MMFUSE_CHECK(!options.reject_bad_rows, bad_input,
                   source + ":" + std::to_string(line_no) + ": " + reason);
      table.bad_rows.push_back({line_no, this_row, reason});
      continue;
    }
    table.values.append_row(values.data());
    table.labels.append_row(labels.data());
    if (time_col >= 0) table.times.emplace_back(trim(fields[static_cast<size_t>(time_col)]));
    table.lines.push_back(line_no);
    table.row_numbers.push_back(this_row);
  }
  return table;
}

SensorTable read_csv(const std::filesystem::path& path, const CsvOptions& options) {
  std::error_code ec;
  MMFUSE_CHECK(!std::filesystem::is_directory(path, ec), bad_input,
               path.string() + ": is a directory, not a CSV file");
  std::ifstream in(path, std::ios::binary);
  MMFUSE_CHECK(in.good(), not_found, path.string() + ": cannot open CSV file");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  MMFUSE_CHECK(!in.bad(), bad_input, path.string() + ": read error");
  return parse_csv(buffer.str(), path.string(), options);
}

}  // namespace mmfuse::sensor
