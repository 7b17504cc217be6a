// Draws labelled boxes on an RGB image (annotated detector output), the way
// Ultralytics' plotted results look: a coloured rectangle per box and its
// label on a filled tag above it.
#pragma once

#include <string>
#include <vector>

#include "vision/image.h"

namespace mmfuse {

struct LabeledBox {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  std::string label;
  int color_index = 0;  // picks the colour (the class id)
};

void draw_boxes(Image* image, const std::vector<LabeledBox>& boxes);

}  // namespace mmfuse
