#include "models/yolo_postprocess.h"

#include <algorithm>
#include <cstdint>
#include <numeric>

#include "mmfuse/error.h"

namespace mmfuse {

std::vector<size_t> nms_indices(const float* boxes, const float* scores, size_t count, float iou_threshold) {
  std::vector<size_t> order(count);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  std::vector<float> area(count);
  for (size_t i = 0; i < count; ++i) {
    const float* b = boxes + i * 4;
    area[i] = (b[2] - b[0]) * (b[3] - b[1]);
  }
  std::vector<char> suppressed(count, 0);
  std::vector<size_t> keep;
  for (size_t a = 0; a < count; ++a) {
    const size_t i = order[a];
    if (suppressed[i]) continue;
    keep.push_back(i);
    const float* bi = boxes + i * 4;
    for (size_t c = a + 1; c < count; ++c) {
      const size_t j = order[c];
      if (suppressed[j]) continue;
      const float* bj = boxes + j * 4;
      const float w = std::max(0.f, std::min(bi[2], bj[2]) - std::max(bi[0], bj[0]));
      const float h = std::max(0.f, std::min(bi[3], bj[3]) - std::max(bi[1], bj[1]));
      const float inter = w * h;
      const float iou = inter / (area[i] + area[j] - inter);
      if (iou > iou_threshold) suppressed[j] = 1;
    }
  }
  return keep;
}

std::vector<RawDetection> yolo_nms(const float* output, YoloLayout layout, int64_t rows, int64_t cols,
                                   const NmsOptions& o) {
  const bool v8 = layout == YoloLayout::anchor_free;
  const int64_t nc = v8 ? rows - 4 : cols - 5;
  const int64_t anchors = v8 ? cols : rows;
  MMFUSE_CHECK(nc >= 1, bad_input, "yolo output: " + std::to_string(rows) + " x " + std::to_string(cols) +
                                       " leaves no class scores");
  // Element (field f, anchor a) of the output.
  auto at = [&](int64_t a, int64_t f) { return v8 ? output[f * cols + a] : output[a * cols + f]; };
  // v8: each anchor's best class, found class row by class row (the rows are
  // contiguous; reading an anchor's column would stride through the whole
  // output once per anchor). Ties keep the lower class, as the column scan did.
  std::vector<float> best_score;
  std::vector<int32_t> best_of;
  if (v8) {
    best_score.assign(output + 4 * cols, output + 5 * cols);
    best_of.assign(anchors, 0);
    for (int64_t c = 1; c < nc; ++c) {
      const float* row = output + (4 + c) * cols;
      for (int64_t a = 0; a < anchors; ++a)
        if (row[a] > best_score[a]) best_score[a] = row[a], best_of[a] = static_cast<int32_t>(c);
    }
  }
  std::vector<RawDetection> cand;
  for (int64_t a = 0; a < anchors; ++a) {
    float best;
    int64_t best_class = 0;
    if (v8) {
      best = best_score[a];
      best_class = best_of[a];
    } else {
      const float obj = at(a, 4);
      if (!(obj > o.conf)) continue;
      best = at(a, 5) * obj;
      for (int64_t c = 1; c < nc; ++c) {
        const float s = at(a, 5 + c) * obj;
        if (s > best) best = s, best_class = c;
      }
    }
    if (!(best > o.conf)) continue;
    if (!o.classes.empty() &&
        std::find(o.classes.begin(), o.classes.end(), static_cast<int>(best_class)) == o.classes.end())
      continue;
    const float x = at(a, 0), y = at(a, 1), dw = at(a, 2) / 2, dh = at(a, 3) / 2;
    cand.push_back({{x - dw, y - dh, x + dw, y + dh}, best, static_cast<int>(best_class)});
  }
  if (cand.empty()) return {};
  if (cand.size() > static_cast<size_t>(o.max_nms) || !v8) {
    std::stable_sort(cand.begin(), cand.end(), [](const RawDetection& a, const RawDetection& b) { return a.score > b.score; });
    if (cand.size() > static_cast<size_t>(o.max_nms)) cand.resize(o.max_nms);
  }
  std::vector<float> boxes(cand.size() * 4), scores(cand.size());
  for (size_t i = 0; i < cand.size(); ++i) {
    const float offset = o.agnostic ? 0.f : static_cast<float>(cand[i].class_id) * o.max_wh;
    for (int k = 0; k < 4; ++k) boxes[i * 4 + k] = cand[i].box[k] + offset;
    scores[i] = cand[i].score;
  }
  std::vector<size_t> keep = nms_indices(boxes.data(), scores.data(), cand.size(), o.iou);
  if (keep.size() > static_cast<size_t>(std::max(0, o.max_det))) keep.resize(std::max(0, o.max_det));
  std::vector<RawDetection> out;
  for (size_t i : keep) out.push_back(cand[i]);
  return out;
}

}  // namespace mmfuse
