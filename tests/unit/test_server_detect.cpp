// POST /v1/detect: the served YOLO export answers with exactly the boxes the
// library's detector gives for the same image and options, from JSON (data: URL)
// and multipart uploads alike; bad requests are 4xx with a JSON error.
#include <gtest/gtest.h>

#include "detect/detection_json.h"
#include "server_test_util.h"
#include "vision/image.h"

namespace mmfuse {
namespace {

using test::json_of;

const std::filesystem::path kModel = test::fixture("yolo/yolov8t-photo-640-op12.onnx");
const std::filesystem::path kPhoto = test::fixture("photos/coco_000000039769.jpg");

server::ServerConfig detect_config() {
  server::ServerConfig c = test::tiny_config();
  c.models.clear();
  c.detectors.push_back({"defects", kModel.string()});
  return c;
}

nlohmann::json library_detections(const DetectOptions& options) {
  auto pool = std::make_shared<ThreadPool>(1);
  return detections_to_json(YoloDetector::open(kModel, {pool})->detect(decode_image_file(kPhoto), options));
}

TEST(ServerDetect, JsonAndMultipartGiveTheLibrarysBoxes) {
  test::RunningServer s(detect_config());
  auto cli = s.client();
  const nlohmann::json expected = library_detections({});
  ASSERT_FALSE(expected.empty());

  const nlohmann::json body = {{"image", test::data_url(kPhoto, "image/jpeg")}};
  auto r = cli.Post("/v1/detect", body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const nlohmann::json j = json_of(r);
  EXPECT_EQ(j["model"], "defects");
  EXPECT_EQ(j["width"], 640);
  EXPECT_EQ(j["height"], 480);
  EXPECT_EQ(j["detections"], expected);

  DetectOptions strict;
  strict.conf = 0.3f;
  strict.classes = {expected[0]["class_id"].get<int>()};
  httplib::MultipartFormDataItems form = {
      {"image", test::file_text(kPhoto), "cats.jpg", "image/jpeg"},
      {"conf", "0.3", "", ""},
      {"classes", expected[0]["class"].get<std::string>(), "", ""}};
  r = cli.Post("/v1/detect", form);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json_of(r)["image"], "cats.jpg");
  EXPECT_EQ(json_of(r)["detections"], library_detections(strict));
}

TEST(ServerDetect, BadRequestsAreClientErrors) {
  test::RunningServer s(detect_config());
  auto cli = s.client();
  auto post = [&](const nlohmann::json& body) {
    return cli.Post("/v1/detect", body.dump(), "application/json");
  };
  const std::string url = test::data_url(kPhoto, "image/jpeg");
  auto r = post({{"conf", 0.5}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(test::error_type(r), "bad_request");
  r = post({{"image", url}, {"conf", 2}});
  EXPECT_EQ(r->status, 400) << r->body;
  r = post({{"image", url}, {"classes", {"no-such-class"}}});
  EXPECT_EQ(r->status, 400) << r->body;
  r = post({{"image", url}, {"model", "other"}});
  EXPECT_EQ(r->status, 404) << r->body;
  r = post({{"image", "data:image/jpeg;base64,AAAA"}});
  EXPECT_EQ(r->status, 400) << r->body;
  r = post({{"image", url}, {"colour", "red"}});
  EXPECT_EQ(r->status, 400) << r->body;
}

}  // namespace
}  // namespace mmfuse
