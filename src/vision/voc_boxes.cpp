#include "vision/voc_boxes.h"

#include <cmath>
#include <stdexcept>

#include "mmfuse/error.h"

namespace mmfuse {

namespace {

// The integer between <tag> and </tag> at or after `from`, inside [from, end).
int voc_field(const std::string& xml, size_t from, size_t end, const std::string& tag,
              const std::string& where) {
  const std::string open = "<" + tag + ">", close = "</" + tag + ">";
  const size_t a = xml.find(open, from);
  MMFUSE_CHECK(a != std::string::npos && a < end, bad_input, where + ": a bndbox has no <" + tag + ">");
  const size_t b = xml.find(close, a);
  MMFUSE_CHECK(b != std::string::npos && b < end, bad_input, where + ": <" + tag + "> is not closed");
  const std::string text = xml.substr(a + open.size(), b - a - open.size());
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  MMFUSE_CHECK(used > 0 && v >= -1e6 && v <= 1e6, bad_input, where + ": <" + tag + "> is not a number");
  return static_cast<int>(std::lround(v));
}

}  // namespace

std::vector<PixelBox> parse_voc_boxes(const std::string& xml, const std::string& where) {
  std::vector<PixelBox> out;
  size_t pos = 0;
  while ((pos = xml.find("<bndbox>", pos)) != std::string::npos) {
    const size_t end = xml.find("</bndbox>", pos);
    MMFUSE_CHECK(end != std::string::npos, bad_input, where + ": <bndbox> is not closed");
    PixelBox b;
    b.x0 = voc_field(xml, pos, end, "xmin", where) - 1;
    b.y0 = voc_field(xml, pos, end, "ymin", where) - 1;
    b.x1 = voc_field(xml, pos, end, "xmax", where);
    b.y1 = voc_field(xml, pos, end, "ymax", where);
    MMFUSE_CHECK(b.x1 > b.x0 && b.y1 > b.y0, bad_input, where + ": an empty or inverted bndbox");
    out.push_back(b);
    pos = end;
  }
  return out;
}

}  // namespace mmfuse
