#include "detect/backbone_features.h"

#include <algorithm>
#include <fstream>
#include <vector>

#include "io/digest.h"
#include "mmfuse/error.h"
#include "models/registry.h"
#include "models/timm_resnet.h"

namespace mmfuse {

namespace fs = std::filesystem;

namespace {

constexpr int kStride = 8;  // layer2's downsampling

// AvgPool2d(3, stride 1, padding 1) with the padding counted (PyTorch's
// default count_include_pad): every output is the 3x3 sum / 9. HWC.
std::vector<float> average_3x3(const FeatureMap& f) {
  std::vector<float> out(f.values.size(), 0.0f);
  const int c = f.channels;
  for (int y = 0; y < f.height; ++y)
    for (int x = 0; x < f.width; ++x) {
      float* dst = out.data() + (static_cast<size_t>(y) * f.width + x) * c;
      for (int dy = -1; dy <= 1; ++dy) {
        const int sy = y + dy;
        if (sy < 0 || sy >= f.height) continue;
        for (int dx = -1; dx <= 1; ++dx) {
          const int sx = x + dx;
          if (sx < 0 || sx >= f.width) continue;
          const float* src = f.values.data() + (static_cast<size_t>(sy) * f.width + sx) * c;
          for (int k = 0; k < c; ++k) dst[k] += src[k];
        }
      }
      for (int k = 0; k < c; ++k) dst[k] /= 9.0f;
    }
  return out;
}

// Source coordinate of output index i for F.interpolate(mode="bilinear",
// align_corners=False): (i + 0.5) * in / out - 0.5, clamped at 0.
void bilinear_taps(int i, int in, int out, int& i0, int& i1, float& w1) {
  float s = (static_cast<float>(i) + 0.5f) * static_cast<float>(in) / static_cast<float>(out) - 0.5f;
  s = std::max(s, 0.0f);
  i0 = std::min(static_cast<int>(s), in - 1);
  i1 = std::min(i0 + 1, in - 1);
  w1 = s - static_cast<float>(i0);
}

class BackboneFeatures : public PatchFeatureSource {
 public:
  BackboneFeatures(const fs::path& dir, std::string sha256)
      : dir_(fs::absolute(dir)), sha256_(std::move(sha256)), net_(TimmResNet::open(dir)) {
    dim_ = net_->stage_channels(1) + net_->stage_channels(2);
  }

  PatchGrid features(const Image& image) const override {
    MMFUSE_CHECK(image.width >= 4 * kStride && image.height >= 4 * kStride, bad_input,
                 "backbone features: the photo is smaller than 32 x 32 pixels");
    const std::vector<float> input = net_->normalise(image);
    const std::vector<FeatureMap> maps = net_->forward(input.data(), image.height, image.width, 2);
    const FeatureMap& l2 = maps[1];
    const FeatureMap& l3 = maps[2];
    const std::vector<float> a2 = average_3x3(l2), a3 = average_3x3(l3);
    // Cells that lie wholly inside the photo (the heat-map maps cell (r, c) to
    // pixels [c * 8, c * 8 + 8)); the upsampling uses layer2's full grid.
    PatchGrid g;
    g.rows = std::min(l2.height, image.height / kStride);
    g.cols = std::min(l2.width, image.width / kStride);
    g.dim = dim_;
    g.values.resize(g.count() * static_cast<size_t>(dim_));
    const int c2 = l2.channels, c3 = l3.channels;
    for (int r = 0; r < g.rows; ++r) {
      int y0, y1;
      float wy;
      bilinear_taps(r, l3.height, l2.height, y0, y1, wy);
      for (int c = 0; c < g.cols; ++c) {
        int x0, x1;
        float wx;
        bilinear_taps(c, l3.width, l2.width, x0, x1, wx);
        float* dst = g.values.data() + (static_cast<size_t>(r) * g.cols + c) * dim_;
        const float* p2 = a2.data() + (static_cast<size_t>(r) * l2.width + c) * c2;
        std::copy(p2, p2 + c2, dst);
        auto at = [&](int y, int x) { return a3.data() + (static_cast<size_t>(y) * l3.width + x) * c3; };
        const float *q00 = at(y0, x0), *q01 = at(y0, x1), *q10 = at(y1, x0), *q11 = at(y1, x1);
        for (int k = 0; k < c3; ++k)
          dst[c2 + k] = (1 - wy) * ((1 - wx) * q00[k] + wx * q01[k]) + wy * ((1 - wx) * q10[k] + wx * q11[k]);
      }
    }
    return g;
  }

  int dim() const override { return dim_; }
  int stride() const override { return kStride; }

  nlohmann::json to_json() const override {
    return {{"kind", "backbone"},
            {"path", dir_.string()},
            {"sha256", sha256_},
            {"architecture", net_->config().architecture},
            {"layers", {"layer2", "layer3"}},
            {"pooling", "avg3x3"},
            {"dim", dim_}};
  }

 private:
  fs::path dir_;
  std::string sha256_;
  std::unique_ptr<TimmResNet> net_;
  int dim_ = 0;
};

}  // namespace

std::vector<PatchGrid> patch_features_of_files(ThreadPool& pool, const std::vector<fs::path>& files,
                                               const PatchFeatureSource& source) {
  std::vector<PatchGrid> out(files.size());
  pool.parallel_tasks(files.size(), [&](size_t i, int) {
    const Image img = decode_image_file(files[i]);
    try {
      out[i] = source.features(img);
    } catch (const Error& e) {
      throw Error(e.kind(), files[i].string() + ": " + e.what());
    }
  });
  return out;
}

std::string model_folder_sha256(const fs::path& dir) {
  std::vector<fs::path> files = {dir / "config.json"};
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() > 12 && name.compare(name.size() - 12, 12, ".safetensors") == 0) files.push_back(e.path());
    if (name == "model.safetensors.index.json") files.push_back(e.path());
  }
  MMFUSE_CHECK(!ec, not_found, dir.string() + ": cannot list the model folder: " + ec.message());
  std::sort(files.begin() + 1, files.end());
  Digest d = Digest::sha256();
  for (const fs::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    MMFUSE_CHECK(in.good(), not_found, f.string() + ": cannot open");
    const std::string name = f.filename().string() + "\n";
    d.update(name.data(), name.size());
    std::vector<char> buf(1 << 20);
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      d.update(buf.data(), static_cast<size_t>(in.gcount()));
    }
  }
  return d.hex();
}

std::shared_ptr<const PatchFeatureSource> open_backbone_features(const fs::path& dir) {
  std::error_code ec;
  MMFUSE_CHECK(fs::is_directory(dir, ec), not_found, dir.string() + ": backbone folder not found");
  // Another kind of model folder (a CLIP, a BERT) is refused naming what can serve.
  (void)architecture_with(dir, Capability::image_features, "give patch features for --backbone");
  return std::make_shared<BackboneFeatures>(dir, model_folder_sha256(dir));
}

bool is_backbone_features_json(const nlohmann::json& j) {
  return j.is_object() && j.contains("kind") && j["kind"].is_string() && j["kind"] == "backbone";
}

std::shared_ptr<const PatchFeatureSource> backbone_features_from_json(const nlohmann::json& j,
                                                                      const std::string& where) {
  MMFUSE_CHECK(is_backbone_features_json(j) && j.contains("path") &&
                   j["path"].is_string() && j.contains("sha256") && j["sha256"].is_string(),
               bad_input, where + ": a backbone needs kind, path and sha256");
  const fs::path dir = j["path"].get<std::string>();
  std::error_code ec;
  MMFUSE_CHECK(fs::is_directory(dir, ec), not_found,
               where + ": the backbone folder " + dir.string() + " is gone");
  const std::string sha = model_folder_sha256(dir);
  MMFUSE_CHECK(sha == j["sha256"].get<std::string>(), bad_input,
               where + ": the backbone folder " + dir.string() +
                   " changed since the fit (SHA-256 differs); refit the model");
  auto source = std::make_shared<BackboneFeatures>(dir, sha);
  MMFUSE_CHECK(!j.contains("dim") || j["dim"] == source->dim(), bad_input,
               where + ": the backbone's feature size differs from the model's");
  return source;
}

}  // namespace mmfuse
