// Plant file parsing: a full example reads back, and each kind of mistake is
// reported with the field path and the YAML line.
#include <gtest/gtest.h>

#include <string>

#include "inspect/plant.h"
#include "mmfuse/error.h"

namespace mmfuse::inspect {
namespace {

const char* kGood = R"(plant: hall-a
data_dir: /var/lib/mmfuse
retention_days: 5
fusion:
  rule: weighted_score
  weights: {camera: 0.5, infrared: 0.2, sound: 0.2, sensors: 0.1}
  threshold: 0.35
alarms:
  cooldown_s: 120
  mqtt: {host: 127.0.0.1, port: 1884, topic_prefix: plant/a}
  webhook: {url: "http://127.0.0.1:9000/hook"}
devices:
  - id: pump-1
    name: Feed pump
    area: Hall A
    location: bay 3
    points:
      - id: motor
        camera: {image: cam/, golden: golden.png, min_area: 30}
        infrared:
          image: ir/
          calibration: {a: 0.04, b: -273.15}
          hot_threshold_c: 85
        sound: {audio: mic/, baseline: [normal1.wav, normal/]}
        sensors: {csv: live.csv, baseline: normal.csv, method: iforest}
      - id: valve
        sensors:
          modbus: {host: 10.0.0.5, port: 5020, registers: ["temp:0:i16:0.1", "flow:2:input:f32"]}
          baseline: valve_normal.csv
)";

// The message of the bad_input error parse_plant throws for `yaml`.
std::string error_of(const std::string& yaml) {
  try {
    parse_plant(yaml, "/plants/plant.yaml");
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::bad_input) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error for:\n" << yaml;
  return "";
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

TEST(InspectPlant, ReadsAFullPlant) {
  const PlantConfig p = parse_plant(kGood, "/plants/plant.yaml");
  EXPECT_EQ(p.name, "hall-a");
  EXPECT_EQ(p.data_dir, "/var/lib/mmfuse");
  EXPECT_EQ(p.retention_days, 5);
  EXPECT_EQ(p.fusion.rule, "weighted_score");
  EXPECT_DOUBLE_EQ(p.fusion.weight(Modality::camera), 0.5);
  EXPECT_DOUBLE_EQ(p.fusion.threshold, 0.35);
  ASSERT_TRUE(p.alarms.mqtt.has_value());
  EXPECT_EQ(p.alarms.mqtt->port, 1884);
  EXPECT_EQ(p.alarms.mqtt->topic_prefix, "plant/a");
  ASSERT_TRUE(p.alarms.webhook.has_value());
  ASSERT_EQ(p.devices.size(), 1u);
  const DeviceConfig& d = p.devices[0];
  EXPECT_EQ(d.name, "Feed pump");
  ASSERT_EQ(d.points.size(), 2u);
  const PointConfig& m = d.points[0];
  ASSERT_TRUE(m.camera && m.infrared && m.sound && m.sensors);
  EXPECT_EQ(m.camera->source, "/plants/cam/");
  EXPECT_EQ(m.camera->golden, "/plants/golden.png");
  EXPECT_EQ(m.camera->min_area, 30);
  EXPECT_EQ(m.camera->width, 640);  // the chapter's size by default
  EXPECT_DOUBLE_EQ(m.infrared->a, 0.04);
  EXPECT_DOUBLE_EQ(m.infrared->b, -273.15);
  EXPECT_DOUBLE_EQ(m.infrared->hot_threshold_c, 85.0);
  ASSERT_EQ(m.sound->baseline.size(), 2u);
  EXPECT_EQ(m.sensors->method, "iforest");
  const PointConfig& v = d.points[1];
  ASSERT_TRUE(v.sensors && v.sensors->modbus);
  EXPECT_EQ(v.sensors->modbus->options.registers.size(), 2u);
  EXPECT_EQ(v.sensors->modbus->options.port, 5020);
  EXPECT_FALSE(v.camera.has_value());
  EXPECT_EQ(p.point_count(), 2u);
}

TEST(InspectPlant, DefaultsFollowTheChapter) {
  const PlantConfig p = parse_plant(
      "devices:\n  - id: d1\n    points:\n      - id: p\n        infrared: {image: a.png, "
      "calibration: {a: 1, b: 0}}\n",
      "/x/plant.yaml");
  EXPECT_EQ(p.fusion.rule, "weighted_vote");
  EXPECT_DOUBLE_EQ(p.fusion.weight(Modality::camera), 0.4);
  EXPECT_DOUBLE_EQ(p.fusion.weight(Modality::infrared), 0.3);
  EXPECT_DOUBLE_EQ(p.fusion.weight(Modality::sound), 0.2);
  EXPECT_DOUBLE_EQ(p.fusion.weight(Modality::sensors), 0.1);
  EXPECT_DOUBLE_EQ(p.fusion.threshold, 0.3);
  EXPECT_FALSE(p.fusion.renormalize);
  EXPECT_EQ(p.retention_days, 7);
  EXPECT_EQ(p.data_dir, "/x/mmfuse-data");
  EXPECT_EQ(p.evidence, EvidencePolicy::anomaly);
}

TEST(InspectPlant, ErrorsNameTheFieldAndLine) {
  struct Case {
    std::string from, to, want;
  };
  const Case cases[] = {
      {"a: 0.04", "a: hot",
       "plant.yaml:22: devices[0].points[0].infrared.calibration.a: expected a number"},
      {"a: 0.04", "a: 0",
       "plant.yaml:22: devices[0].points[0].infrared.calibration.a: must not be 0"},
      {"hot_threshold_c: 85", "hot_treshold_c: 85",
       "plant.yaml:23: devices[0].points[0].infrared.hot_treshold_c: unknown key"},
      {"method: iforest", "method: magic",
       "plant.yaml:25: devices[0].points[0].sensors.method: unknown method"},
      {"rule: weighted_score", "rule: vote", "plant.yaml:5: fusion.rule: unknown rule 'vote'"},
      {"camera: 0.5,", "camera: 1.5,", "plant.yaml:6: fusion.weights.camera: must be in [0, 1]"},
      {"threshold: 0.35", "threshold: 0", "plant.yaml:7: fusion.threshold: must be in"},
      {"port: 1884", "port: 99999", "plant.yaml:10: alarms.mqtt.port: must be in [1, 65535]"},
      {"topic_prefix: plant/a", "topic_prefix: plant/#",
       "alarms.mqtt.topic_prefix: must not contain"},
      {"http://127.0.0.1:9000/hook", "ftp://x",
       "plant.yaml:11: alarms.webhook.url: must start with http"},
      {"retention_days: 5", "retention_days: 2.5",
       "plant.yaml:3: retention_days: expected an integer"},
      {"  - id: pump-1", "  - id: pump 1", "plant.yaml:13: devices[0].id: 'pump 1' may only hold"},
      {"      - id: valve", "      - id: motor",
       "plant.yaml:26: devices[0].points[1].id: duplicate point id"},
      {"sound: {audio: mic/, baseline: [normal1.wav, normal/]}", "sound: {audio: mic/}",
       "plant.yaml:24: devices[0].points[0].sound.baseline: required"},
      {"\"temp:0:i16:0.1\"", "\"temp:zero\"",
       "plant.yaml:28: devices[0].points[1].sensors.modbus.registers[0]:"},
      {"modbus: {host", "csv: v.csv\n          modbus: {host",
       "devices[0].points[1].sensors: give exactly one source"},
      {"camera: {image: cam/, golden: golden.png, min_area: 30}", "camera: {image: cam/}",
       "plant.yaml:19: devices[0].points[0].camera.golden: required"},
  };
  for (const Case& c : cases) {
    const std::string msg = error_of(replaced(kGood, c.from, c.to));
    EXPECT_NE(msg.find(c.want), std::string::npos) << "got: " << msg << "\nwant: " << c.want;
  }
}

TEST(InspectPlant, StructuralErrors) {
  EXPECT_NE(error_of("").find("plant.yaml:1: : the plant file is empty"), std::string::npos);
  EXPECT_NE(error_of("devices: [\n").find("plant.yaml:"),
            std::string::npos);  // syntax error with a line
  EXPECT_NE(error_of("plant: x\n").find("devices: required"), std::string::npos);
  EXPECT_NE(error_of("devices:\n  - id: a\n    points:\n      - id: p\n")
                .find("plant.yaml:4: devices[0].points[0]: a point needs at least one of"),
            std::string::npos);
  EXPECT_NE(
      error_of(
          "devices:\n  - id: a\n    points: [{id: p, sensors: {csv: a.csv, baseline: b.csv}}]\n"
          "  - id: a\n    points: [{id: p, sensors: {csv: a.csv, baseline: b.csv}}]\n")
          .find("plant.yaml:4: devices[1].id: duplicate device id 'a'"),
      std::string::npos);
  EXPECT_NE(error_of("evidence: sometimes\ndevices: []\n")
                .find("plant.yaml:1: evidence: expected always"),
            std::string::npos);
  try {
    load_plant("/nonexistent/plant.yaml");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::not_found);
  }
}

}  // namespace
}  // namespace mmfuse::inspect

namespace mmfuse::inspect {
namespace {

TEST(InspectPlant, YamlOddities) {
  // A mapping as a key, a key repeated, tabs: all bad_input with a line, never another exception.
  for (const char* text :
       {"{a: 1}: 2\n", "devices:\n  - id: a\n    id: b\n", "devices:\n\t- id: a\n",
        "devices: [[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]\n", "devices: !!binary x\n"}) {
    try {
      parse_plant(text, "/p/plant.yaml");
      ADD_FAILURE() << text;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::bad_input) << text;
      EXPECT_EQ(std::string(e.what()).rfind("plant.yaml:", 0), 0u) << e.what();
    }
  }
}

}  // namespace
}  // namespace mmfuse::inspect
