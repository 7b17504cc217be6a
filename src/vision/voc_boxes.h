// Boxes of a Pascal-VOC annotation file (NEU-DET, many detection sets): the
// <bndbox> entries' corners. Only the boxes are read; no XML library needed.
#pragma once

#include <string>
#include <vector>

namespace mmfuse {

struct PixelBox {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;  // pixels, x1/y1 exclusive
};

// VOC's 1-based inclusive corners become 0-based half-open boxes. A box
// without its four corners, a corner that is not a number, or an empty box:
// Error(bad_input) naming `where`.
std::vector<PixelBox> parse_voc_boxes(const std::string& xml, const std::string& where);

}  // namespace mmfuse
