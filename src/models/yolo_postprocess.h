// Decoding of Ultralytics detection outputs and their non-maximum suppression,
// as ultralytics 8.2 utils/ops.py non_max_suppression (YOLOv8 layout) and
// YOLOv5 7.0 utils/general.py non_max_suppression (objectness layout) do it:
// confidence filter, xywh -> xyxy, best class, optional class filter, at most
// max_nms candidates by confidence, class offsets (c * max_wh) unless
// agnostic, torchvision's NMS (float32 IoU, suppress IoU > threshold), at most
// max_det kept. All arithmetic in float32 like the reference.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mmfuse {

enum class YoloLayout {
  anchor_free,  // (1, 4 + nc, anchors): YOLOv8/v9/v10-style, xywh then class scores
  objectness,   // (1, boxes, 5 + nc): YOLOv5/v7-style, xywh, objectness, class scores
};

struct NmsOptions {
  float conf = 0.25f;
  float iou = 0.7f;
  int max_det = 300;
  bool agnostic = false;
  std::vector<int> classes;  // keep only these class ids (empty = all)
  int max_nms = 30000;
  float max_wh = 7680.f;
};

struct RawDetection {
  float box[4];  // x1, y1, x2, y2 in network-input pixels
  float score;
  int class_id;
};

// `output`: the network output of `layout`, with `rows` x `cols` its last two
// dimensions. Returns the kept boxes in score order.
std::vector<RawDetection> yolo_nms(const float* output, YoloLayout layout, int64_t rows, int64_t cols,
                                   const NmsOptions& options);

// torchvision.ops.nms: indices of the kept boxes (xyxy, 4 floats each), by
// descending score (stable for ties).
std::vector<size_t> nms_indices(const float* boxes, const float* scores, size_t count, float iou_threshold);

}  // namespace mmfuse
