// The Pascal-VOC box reader of `image eval-boxes`: corners become 0-based
// half-open boxes; broken boxes are errors naming the file.
#include <gtest/gtest.h>

#include "mmfuse/error.h"
#include "vision/voc_boxes.h"

namespace mmfuse {
namespace {

TEST(VocBoxes, CornersBecomeHalfOpenPixelBoxes) {
  const std::string xml =
      "<annotation><object><bndbox><xmin>4</xmin><ymin>34</ymin><xmax>58</xmax><ymax>134</ymax>"
      "</bndbox></object><object><bndbox><xmin>73</xmin><ymin>117</ymin><xmax>198</xmax>"
      "<ymax>157</ymax></bndbox></object></annotation>";
  const std::vector<PixelBox> b = parse_voc_boxes(xml, "a.xml");
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].x0, 3);
  EXPECT_EQ(b[0].y0, 33);
  EXPECT_EQ(b[0].x1, 58);
  EXPECT_EQ(b[0].y1, 134);
  EXPECT_EQ(b[1].x0, 72);
  EXPECT_TRUE(parse_voc_boxes("<annotation/>", "a.xml").empty());
  for (const char* bad : {"<bndbox><xmin>4</xmin></bndbox>", "<bndbox><xmin>4</xmin>",
                          "<bndbox><xmin>x</xmin><ymin>1</ymin><xmax>2</xmax><ymax>3</ymax></bndbox>",
                          "<bndbox><xmin>9</xmin><ymin>1</ymin><xmax>2</xmax><ymax>3</ymax></bndbox>"}) {
    try {
      parse_voc_boxes(bad, "a.xml");
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::bad_input);
      EXPECT_NE(std::string(e.what()).find("a.xml"), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace mmfuse
