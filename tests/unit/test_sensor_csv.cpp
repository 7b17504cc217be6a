// CSV sensor source: delimiter detection, time and label columns, and the bad
// row rules (reported by line, skipped or rejected, NaN never let through).
#include <gtest/gtest.h>

#include <cmath>

#include "mmfuse/error.h"
#include "sensor/csv_source.h"
#include "test_sensor_util.h"

namespace mmfuse::sensor {
namespace {

std::string message_of(const std::string& text, const CsvOptions& o) {
  try {
    parse_csv(text, "mem.csv", o);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    return e.what();
  }
  ADD_FAILURE() << "no error for: " << text;
  return "";
}

TEST(SensorCsv, CommaWithTimeColumn) {
  const SensorTable t = parse_csv("timestamp,a,b\n0,1.5,2\n1,-3e2,4.25\n", "mem.csv", {});
  EXPECT_EQ(t.time_column, "timestamp");
  EXPECT_EQ(t.channels, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(t.rows(), 2u);
  EXPECT_EQ(t.values(1, 0), -300.0);
  EXPECT_EQ(t.values(1, 1), 4.25);
  EXPECT_EQ(t.times, (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(t.lines, (std::vector<size_t>{2, 3}));
}

TEST(SensorCsv, SemicolonSkabLayoutKeepsLabelsApart) {
  const std::string text =
      "datetime;Accelerometer1RMS;Current;anomaly;changepoint\n"
      "2020-03-09 10:14:33;0.0265878;1.3302;0.0;0.0\n"
      "2020-03-09 10:14:34;0.0261697;1.35399;1.0;1.0\n";
  const SensorTable t = parse_csv(text, "mem.csv", {});
  EXPECT_EQ(t.time_column, "datetime");
  EXPECT_EQ(t.channels, (std::vector<std::string>{"Accelerometer1RMS", "Current"}));
  EXPECT_EQ(t.label_names, (std::vector<std::string>{"anomaly", "changepoint"}));
  EXPECT_EQ(t.label_index("ANOMALY"), 0);
  EXPECT_EQ(t.labels(1, 0), 1.0);
  EXPECT_EQ(t.times[0], "2020-03-09 10:14:33");
}

TEST(SensorCsv, DecimalCommaWithSemicolons) {
  const SensorTable t = read_csv(test::sensor_fixture("sensor/decimal_comma.csv"), {});
  ASSERT_EQ(t.rows(), 40u);
  EXPECT_TRUE(t.time_column.empty());
  EXPECT_EQ(t.channels.size(), 2u);
  const SensorTable u = parse_csv("x;y\n1,5;-2,25\n", "mem.csv", {});
  EXPECT_EQ(u.values(0, 0), 1.5);
  EXPECT_EQ(u.values(0, 1), -2.25);
}

TEST(SensorCsv, TabsQuotesCrlfBomAndBlankLines) {
  const SensorTable t = parse_csv(
      "\xEF\xBB\xBFtime\t\"flow, l/min\"\r\n\r\n0\t\"1.5\"\r\n\n1\t 2 \r\n", "mem.csv", {});
  EXPECT_EQ(t.channels, (std::vector<std::string>{"flow, l/min"}));
  ASSERT_EQ(t.rows(), 2u);
  EXPECT_EQ(t.values(0, 0), 1.5);
  EXPECT_EQ(t.values(1, 0), 2.0);
  EXPECT_EQ(t.lines, (std::vector<size_t>{3, 5}));
  EXPECT_EQ(t.row_numbers, (std::vector<size_t>{0, 1}));
  const SensorTable q = parse_csv("a,b\n\"x\"\"y\",2\n", "mem.csv", {});  // "" is a quote
  EXPECT_EQ(q.rows(), 0u);
  ASSERT_EQ(q.bad_rows.size(), 1u);
  EXPECT_NE(q.bad_rows[0].reason.find("x\"y"), std::string::npos);
}

TEST(SensorCsv, ExplicitTimeColumnAndNone) {
  CsvOptions o;
  o.time_column = "-";
  const SensorTable t = parse_csv("time,a\n1,2\n", "mem.csv", o);
  EXPECT_EQ(t.channels, (std::vector<std::string>{"time", "a"}));
  o.time_column = "a";
  const SensorTable u = parse_csv("time,a\n1,x\n", "mem.csv", o);
  EXPECT_EQ(u.channels, (std::vector<std::string>{"time"}));
  EXPECT_EQ(u.times[0], "x");
  o.time_column = "nope";
  EXPECT_NE(message_of("time,a\n1,2\n", o).find("no time column named 'nope'"), std::string::npos);
}

TEST(SensorCsv, BadRowsAreSkippedAndReportedByLine) {
  const SensorTable t = read_csv(test::sensor_fixture("sensor/bad_rows.csv"), {});
  EXPECT_EQ(t.rows(), 56u);
  ASSERT_EQ(t.bad_rows.size(), 4u);
  EXPECT_EQ(t.bad_rows[0].line, 12u);
  EXPECT_NE(t.bad_rows[0].reason.find("column 'b': not a finite number: 'abc'"), std::string::npos);
  EXPECT_EQ(t.bad_rows[1].line, 20u);
  EXPECT_NE(t.bad_rows[1].reason.find("expected 4 fields, found 3"), std::string::npos);
  EXPECT_EQ(t.bad_rows[2].line, 31u);
  EXPECT_NE(t.bad_rows[2].reason.find("column 'a': missing value"), std::string::npos);
  EXPECT_EQ(t.bad_rows[3].line, 47u);
  EXPECT_NE(t.bad_rows[3].reason.find("'NaN'"), std::string::npos);
  // Data rows keep their numbers: the bad ones leave gaps.
  EXPECT_EQ(t.bad_rows[0].row, 10u);
  EXPECT_EQ(t.row_numbers[10], 11u);
  for (double v : t.values.data) EXPECT_TRUE(std::isfinite(v));
}

TEST(SensorCsv, RejectModeNamesFileLineAndColumn) {
  CsvOptions o;
  o.reject_bad_rows = true;
  try {
    read_csv(test::sensor_fixture("sensor/bad_rows.csv"), o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input);
    const std::string m = e.what();
    EXPECT_NE(m.find("bad_rows.csv:12: column 'b': not a finite number: 'abc'"), std::string::npos)
        << m;
  }
}

TEST(SensorCsv, NonFiniteValuesNeverPass) {
  for (const char* v :
       {"nan", "NaN", "inf", "-inf", "Infinity", "1e999", "0x10", "1.2.3", "--1", "1 2"}) {
    const SensorTable t = parse_csv(std::string("a,b\n1,") + v + "\n2,3\n", "mem.csv", {});
    EXPECT_EQ(t.rows(), 1u) << v;
    EXPECT_EQ(t.bad_rows.size(), 1u) << v;
  }
}

TEST(SensorCsv, HeaderErrors) {
  EXPECT_NE(message_of("", {}).find("mem.csv: empty file"), std::string::npos);
  EXPECT_NE(message_of("\n\n", {}).find("empty file"), std::string::npos);
  EXPECT_NE(message_of("a,a\n1,2\n", {}).find("duplicate column 'a'"), std::string::npos);
  EXPECT_NE(message_of("a,,b\n1,2,3\n", {}).find("column 2 has no name"), std::string::npos);
  EXPECT_NE(message_of("time,anomaly\n1,0\n", {}).find("no channel column"), std::string::npos);
  EXPECT_NE(message_of("\"a,b\n", {}).find("mem.csv:1: header: unterminated quoted field"),
            std::string::npos);
  const SensorTable header_only = parse_csv("a,b\n", "mem.csv", {});
  EXPECT_EQ(header_only.rows(), 0u);
}

TEST(SensorCsv, MissingFileIsNotFound) {
  try {
    read_csv("/nonexistent/x.csv", {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::not_found);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/x.csv"), std::string::npos);
  }
  EXPECT_THROW(read_csv(test::sensor_fixture("sensor"), {}), Error);  // a folder
}

TEST(SensorCsv, ReadsSkabFileWhenPresent) {
  if (test::skab_dir().empty())
    GTEST_SKIP() << "SKAB data not present (../shared/data/sensors/skab)";
  const auto path = test::skab_dir() / "valve1/0.csv";
  CsvOptions o;
  o.reject_bad_rows = true;
  const SensorTable t = read_csv(path, o);
  EXPECT_EQ(t.rows(), 1147u);
  EXPECT_EQ(t.channels.size(), 8u);
  EXPECT_EQ(t.label_names.size(), 2u);
}

}  // namespace
}  // namespace mmfuse::sensor
