// The ONNX executor against numpy (one graph per op) and against PyTorch (the
// toy YOLOv8 exports at opset 12 and 17, the toy YOLOv5 export), and the
// refusal of graphs that are not Ultralytics detection exports.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <thread>
#include <nlohmann/json.hpp>

#include "io/onnx_model.h"
#include "mmfuse/error.h"
#include "models/onnx_graph.h"
#include "models/yolo.h"

namespace mmfuse {
namespace {

namespace fs = std::filesystem;
const fs::path kToys = fs::path(MMFUSE_FIXTURES) / "yolo_toy";

std::vector<float> read_f32(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

TEST(OnnxGraph, EachOpMatchesNumpy) {
  for (const auto& c : read_json(kToys / "op_cases.json")) {
    SCOPED_TRACE(c["model"].get<std::string>());
    const OnnxModel m = OnnxModel::load(kToys / c["model"].get<std::string>());
    const std::vector<float> x = c["input"].get<std::vector<float>>();
    const std::vector<float> want = c["output"].get<std::vector<float>>();
    for (int threads : {1, 2}) {
      OnnxGraphRunner r(m, c["input_shape"].get<std::vector<int64_t>>(), threads);
      EXPECT_EQ(r.output_shape(0), c["output_shape"].get<std::vector<int64_t>>());
      const auto got = r.run(x.data());
      ASSERT_EQ(got[0].size(), want.size());
      for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[0][i], want[i], 1e-5f * (1 + std::fabs(want[i]))) << i;
    }
  }
}

TEST(OnnxGraph, ToyExportsMatchPytorch) {
  for (const auto& c : read_json(kToys / "manifest.json")) {
    SCOPED_TRACE(c["model"].get<std::string>());
    const OnnxModel m = OnnxModel::load(kToys / c["model"].get<std::string>());
    OnnxGraphRunner r(m, c["input_shape"].get<std::vector<int64_t>>(), 2);
    EXPECT_EQ(r.output_shape(0), c["output_shape"].get<std::vector<int64_t>>());
    const std::vector<float> x = read_f32(kToys / c["input"].get<std::string>());
    const std::vector<float> want = read_f32(kToys / c["output"].get<std::string>());
    const auto got = r.run(x.data());
    ASSERT_EQ(got[0].size(), want.size());
    float worst = 0;
    for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::fabs(got[0][i] - want[i]) / (1 + std::fabs(want[i])));
    EXPECT_LT(worst, 2e-5f) << r.summary();
    // Every Conv+SiLU pair is one fused oneDNN convolution; few layout changes.
    EXPECT_NE(r.summary().find("fused SiLU"), std::string::npos);
    // Planned for interleaved input (what YoloDetector feeds it): the same floats.
    const std::vector<int64_t> shape = c["input_shape"].get<std::vector<int64_t>>();
    const int64_t C = shape[1], HW = shape[2] * shape[3];
    std::vector<float> hwc(x.size());
    for (int64_t ch = 0; ch < C; ++ch)
      for (int64_t p = 0; p < HW; ++p) hwc[p * C + ch] = x[ch * HW + p];
    OnnxGraphRunner rn(m, shape, 2, /*input_nhwc=*/true);
    EXPECT_EQ(rn.run(hwc.data())[0], got[0]);
  }
}

TEST(OnnxGraph, ConcurrentRunsAgree) {
  const OnnxModel m = OnnxModel::load(kToys / "v8_toy_op17.onnx");
  OnnxGraphRunner r(m, {1, 3, 64, 96});
  const std::vector<float> x = read_f32(kToys / "v8_toy_op17.input.f32");
  const auto want = r.run(x.data());
  std::vector<std::thread> threads;
  std::vector<int> same(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int k = 0; k < 5; ++k) same[t] += r.run(x.data()) == want;
    });
  for (auto& t : threads) t.join();
  for (int s : same) EXPECT_EQ(s, 5);
}

TEST(YoloDetector, OpensToysWithMetadata) {
  auto v8 = YoloDetector::open(kToys / "v8_toy_op12.onnx");
  EXPECT_EQ(v8->class_names(), (std::vector<std::string>{"scratch", "dent", "oil 'leak'"}));
  EXPECT_EQ(v8->layout(), YoloLayout::anchor_free);
  EXPECT_EQ(v8->input_height(), 64);
  EXPECT_EQ(v8->input_width(), 96);
  auto v5 = YoloDetector::open(kToys / "v5_toy_op12.onnx");
  EXPECT_EQ(v5->layout(), YoloLayout::objectness);
  EXPECT_EQ(v5->class_names(), (std::vector<std::string>{"crack", "bolt"}));
  // Detection runs end to end on a synthetic image and keeps boxes inside it.
  Image img;
  img.width = 120;
  img.height = 70;
  img.rgb.resize(120 * 70 * 3);
  for (size_t i = 0; i < img.rgb.size(); ++i) img.rgb[i] = static_cast<uint8_t>((i * 37) % 251);
  DetectOptions o;
  o.conf = 0.01f;
  for (const auto* d : {v8.get(), v5.get()})
    for (const Detection& x : d->detect(img, o)) {
      EXPECT_GE(x.x1, 0);
      EXPECT_LE(x.x2, 120);
      EXPECT_GE(x.y1, 0);
      EXPECT_LE(x.y2, 70);
      EXPECT_GT(x.score, 0.01f);
    }
  // A static export takes only its own size.
  o.imgsz_h = 128;
  EXPECT_THROW(v8->detect(img, o), Error);
}

void expect_refused(const fs::path& path, const std::string& fragment) {
  try {
    YoloDetector::open(path);
    FAIL() << path << " was accepted";
  } catch (const Error& e) {
    EXPECT_NE(e.kind(), ErrorKind::internal) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path.filename().string()), std::string::npos) << e.what();
  }
}

TEST(YoloDetector, RefusesWhatIsNotAnUltralyticsExport) {
  expect_refused(kToys / "op_transpose.onnx", "metadata_props.names is missing");
  expect_refused(kToys / "no_such.onnx", "cannot open");
  const fs::path nanodet = fs::path(MMFUSE_FIXTURES) / "../../../shared/data/models/nanodet_m/nanodet_m.onnx";
  if (!fs::exists(nanodet)) GTEST_SKIP() << "nanodet_m.onnx not present (../shared/data/models)";
  expect_refused(nanodet, "not a recognised Ultralytics export");
}

TEST(YoloNames, ParsesPythonReprs) {
  EXPECT_EQ(parse_yolo_names("{0: 'scratch', 1: 'dent'}", "n"), (std::vector<std::string>{"scratch", "dent"}));
  EXPECT_EQ(parse_yolo_names("{0: \"it's\", 1: 'a\\'b', 2: 'x\\\\y', 3: '\\u00e9'}", "n"),
            (std::vector<std::string>{"it's", "a'b", "x\\y", "\xc3\xa9"}));
  EXPECT_EQ(parse_yolo_names("['a', \"b\"]", "n"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(parse_yolo_names("{1: 'b', 0: 'a'}", "n"), (std::vector<std::string>{"a", "b"}));
  for (const char* bad : {"", "{}", "{0: 'a', 2: 'b'}", "{0: 'a'", "{0: a}", "{0: 'a', 0: 'b'}", "[1, 2]", "{0: 'a'} x"})
    EXPECT_THROW(parse_yolo_names(bad, "n"), Error) << bad;
  EXPECT_EQ(parse_yolo_imgsz("[640, 480]", "i"), std::make_pair(640, 480));
  EXPECT_EQ(parse_yolo_imgsz("320", "i"), std::make_pair(320, 320));
  EXPECT_THROW(parse_yolo_imgsz("[0, 1]", "i"), Error);
}

}  // namespace
}  // namespace mmfuse
