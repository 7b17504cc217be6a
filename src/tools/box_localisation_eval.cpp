#include "tools/box_localisation_eval.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <numeric>

#include "mmfuse/error.h"
#include "tools/dataset_manifest.h"
#include "vision/image.h"

namespace mmfuse {

namespace fs = std::filesystem;

namespace {

struct BoxEntry {
  fs::path image, annotation;
  std::string cls;
};

std::vector<BoxEntry> read_box_manifest(const fs::path& root) {
  std::vector<BoxEntry> out;
  for (const auto& cells : read_dataset_manifest(root, "image,annotation,class", 3))
    out.push_back({root / cells[0], root / cells[1], cells[2]});
  MMFUSE_CHECK(!out.empty(), bad_input, (root / "manifest.csv").string() + ": no photos listed");
  return out;
}

bool in_any(const std::vector<PixelBox>& boxes, int x, int y) {
  for (const PixelBox& b : boxes)
    if (x >= b.x0 && x < b.x1 && y >= b.y0 && y < b.y1) return true;
  return false;
}

}  // namespace

BoxEvalReport evaluate_box_localisation(ThreadPool& pool, const fs::path& root,
                                        const ImageAnomalyConfig& config,
                                        std::shared_ptr<const PatchFeatureSource> source,
                                        double top_fraction) {
  MMFUSE_CHECK(top_fraction > 0 && top_fraction <= 1, bad_input, "top fraction must be in (0, 1]");
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<BoxEntry> entries = read_box_manifest(root);
  const int stride = source ? source->stride() : config.features.stride;
  std::vector<PatchGrid> grids(entries.size());
  std::vector<std::vector<PixelBox>> boxes(entries.size());
  pool.parallel_tasks(entries.size(), [&](size_t i, int) {
    const Image img = decode_image_file(entries[i].image);
    try {
      grids[i] = source ? source->features(img) : texture_features(img, config.features);
    } catch (const Error& e) {
      throw Error(e.kind(), entries[i].image.string() + ": " + e.what());
    }
    std::ifstream in(entries[i].annotation, std::ios::binary);
    MMFUSE_CHECK(in.good(), not_found, entries[i].annotation.string() + ": cannot open");
    const std::string xml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    boxes[i] = parse_voc_boxes(xml, entries[i].annotation.string());
  });
  // Cell (r, c) is centred on pixel (c * stride + stride / 2, r * stride + stride / 2).
  auto inside = [&](size_t i, size_t cell) {
    const int r = static_cast<int>(cell / grids[i].cols), c = static_cast<int>(cell % grids[i].cols);
    return in_any(boxes[i], c * stride + stride / 2, r * stride + stride / 2);
  };
  // Each photo's cells outside its boxes, as a one-row grid (the bank ignores layout).
  std::vector<PatchGrid> outside(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    PatchGrid& o = outside[i];
    o.dim = grids[i].dim;
    o.rows = 1;
    for (size_t cell = 0; cell < grids[i].count(); ++cell) {
      if (inside(i, cell)) continue;
      const float* p = grids[i].values.data() + cell * grids[i].dim;
      o.values.insert(o.values.end(), p, p + grids[i].dim);
      ++o.cols;
    }
  }
  BoxEvalReport report;
  report.top_fraction = top_fraction;
  for (size_t i = 0; i < entries.size(); ++i) {
    std::vector<PatchGrid> train;
    for (size_t j = 0; j < entries.size(); ++j)
      if (j != i && entries[j].cls == entries[i].cls && outside[j].cols > 0) train.push_back(outside[j]);
    const ImageAnomalyModel model = ImageAnomalyModel::fit(pool, train, config);
    const AnomalyMap map = model.score(grids[i]);
    std::vector<size_t> order(map.cells.size());
    std::iota(order.begin(), order.end(), size_t{0});
    const size_t top = std::max<size_t>(1, static_cast<size_t>(top_fraction * static_cast<double>(order.size())));
    std::partial_sort(order.begin(), order.begin() + top, order.end(),
                      [&](size_t a, size_t b) { return map.cells[a] > map.cells[b]; });
    BoxClassResult& res = report.classes[entries[i].cls];
    ++res.photos;
    res.boxes += boxes[i].size();
    for (const PixelBox& b : boxes[i]) {
      for (size_t k = 0; k < top; ++k) {
        const int r = static_cast<int>(order[k] / map.cols), c = static_cast<int>(order[k] % map.cols);
        if (in_any({b}, c * stride + stride / 2, r * stride + stride / 2)) {
          ++res.boxes_hit;
          break;
        }
      }
    }
    if (inside(i, order[0])) ++res.peaks_in_box;
    size_t in_cells = 0;
    for (size_t cell = 0; cell < grids[i].count(); ++cell) in_cells += inside(i, cell) ? 1 : 0;
    res.chance += static_cast<double>(in_cells) / static_cast<double>(grids[i].count());
  }
  for (auto& [cls, res] : report.classes) {
    report.all.photos += res.photos;
    report.all.boxes += res.boxes;
    report.all.boxes_hit += res.boxes_hit;
    report.all.peaks_in_box += res.peaks_in_box;
    report.all.chance += res.chance;
    res.chance /= static_cast<double>(std::max<size_t>(1, res.photos));
  }
  report.all.chance /= static_cast<double>(std::max<size_t>(1, report.all.photos));
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace mmfuse
