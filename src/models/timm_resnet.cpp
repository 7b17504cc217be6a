#include "models/timm_resnet.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <mutex>
#include <optional>

#include "core/conv2d.h"
#include "io/model_folder.h"
#include "mmfuse/error.h"

// libgomp runs oneDNN: a forward asks for one OpenMP thread (the caller's own)
// and restores the previous setting (see core/gemm.cpp).
extern "C" void omp_set_num_threads(int);
extern "C" int omp_get_max_threads(void);

namespace mmfuse {

namespace fs = std::filesystem;

namespace {

constexpr float kBnEps = 1e-5f;  // torch.nn.BatchNorm2d's default, timm keeps it

struct Family {
  const char* name;
  bool bottleneck;
  std::array<int, 4> layers;
  int base_width;
};

// timm's registered names this file reproduces (resnet.py: resnet18 ... wide_resnet101_2).
constexpr Family kFamilies[] = {
    {"resnet18", false, {2, 2, 2, 2}, 64},        {"resnet34", false, {3, 4, 6, 3}, 64},
    {"resnet50", true, {3, 4, 6, 3}, 64},         {"resnet101", true, {3, 4, 23, 3}, 64},
    {"resnet152", true, {3, 8, 36, 3}, 64},       {"wide_resnet50_2", true, {3, 4, 6, 3}, 128},
    {"wide_resnet101_2", true, {3, 4, 23, 3}, 128},
};

const Family* family_of(const std::string& architecture) {
  // timm names may carry a pretrained tag: "resnet50.a1_in1k".
  const std::string base = architecture.substr(0, architecture.find('.'));
  for (const Family& f : kFamilies)
    if (base == f.name) return &f;
  return nullptr;
}

// A convolution with its batch norm folded in (and the ReLU fused when one
// follows): the weights, kept to plan the convolution for each input size.
struct FoldedConv {
  int in_c = 0, out_c = 0, kernel = 1, stride = 1;
  bool relu = false;
  std::vector<float> weight, bias;
};

FoldedConv fold_conv(WeightStore& w, const std::string& conv, const std::string& bn, int in_c,
                     int stride, bool relu, const std::string& where) {
  MMFUSE_CHECK(w.has(conv + ".weight"), bad_input, where + ": missing tensor " + conv + ".weight");
  const TensorInfo& info = w.info(conv + ".weight");
  MMFUSE_CHECK(info.shape.size() == 4 && info.shape[1] == in_c && info.shape[2] == info.shape[3] &&
                   info.shape[2] % 2 == 1 && info.shape[0] > 0 && info.shape[0] < (1 << 16),
               bad_input, where + ": " + conv + ".weight has an unexpected shape");
  FoldedConv f;
  f.in_c = in_c;
  f.out_c = static_cast<int>(info.shape[0]);
  f.kernel = static_cast<int>(info.shape[2]);
  f.stride = stride;
  f.relu = relu;
  const int out_c = f.out_c, k = f.kernel;
  const float* weight = w.f32(conv + ".weight", {out_c, in_c, k, k});
  const float* gamma = w.f32(bn + ".weight", {out_c});
  const float* beta = w.f32(bn + ".bias", {out_c});
  const float* mean = w.f32(bn + ".running_mean", {out_c});
  const float* var = w.f32(bn + ".running_var", {out_c});
  const size_t per_out = static_cast<size_t>(in_c) * k * k;
  f.weight.assign(weight, weight + per_out * out_c);
  f.bias.resize(out_c);
  for (int o = 0; o < out_c; ++o) {
    MMFUSE_CHECK(var[o] >= 0.0f, bad_input, where + ": " + bn + ".running_var is negative");
    const float scale = gamma[o] / std::sqrt(var[o] + kBnEps);
    for (size_t i = 0; i < per_out; ++i) f.weight[o * per_out + i] *= scale;
    f.bias[o] = beta[o] - mean[o] * scale;
  }
  return f;
}

// A FoldedConv planned for one input size.
struct PlannedConv {
  std::unique_ptr<Conv2d> conv;
  int out_h = 0, out_w = 0, out_c = 0;
};

PlannedConv plan(const FoldedConv& f, int in_h, int in_w) {
  Conv2dShape s;
  s.in_channels = f.in_c;
  s.out_channels = f.out_c;
  s.in_h = in_h;
  s.in_w = in_w;
  s.kernel_h = s.kernel_w = f.kernel;
  s.stride_h = s.stride_w = f.stride;
  s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = f.kernel / 2;
  PlannedConv p;
  p.conv = std::make_unique<Conv2d>(s, f.weight.data(), f.bias.data(),
                                    f.relu ? ConvActivation::relu : ConvActivation::none);
  p.out_h = s.out_h();
  p.out_w = s.out_w();
  p.out_c = f.out_c;
  return p;
}

struct Block {
  std::vector<FoldedConv> convs;  // 2 (basic) or 3 (bottleneck); the last without ReLU
  std::optional<FoldedConv> downsample;
};

struct PlannedBlock {
  std::vector<PlannedConv> convs;
  std::optional<PlannedConv> downsample;
};

// Every convolution planned for one input size, up to a stage.
struct Plan {
  PlannedConv stem;
  std::vector<std::vector<PlannedBlock>> stages;
  size_t scratch_bytes = 0;
};

struct AlignedBuffer {
  void* data = nullptr;
  explicit AlignedBuffer(size_t bytes) {
    if (bytes > 0) data = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    MMFUSE_CHECK(bytes == 0 || data, internal, "timm resnet: out of memory for the scratchpad");
  }
  ~AlignedBuffer() { std::free(data); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
};

// 3x3 max-pool, stride 2, padding 1 (padding never wins), HWC.
std::vector<float> max_pool_3x3_s2(const std::vector<float>& x, int h, int w, int c, int& oh, int& ow) {
  oh = (h + 2 - 3) / 2 + 1;
  ow = (w + 2 - 3) / 2 + 1;
  std::vector<float> out(static_cast<size_t>(oh) * ow * c, -std::numeric_limits<float>::infinity());
  for (int y = 0; y < oh; ++y)
    for (int xo = 0; xo < ow; ++xo) {
      float* dst = out.data() + (static_cast<size_t>(y) * ow + xo) * c;
      for (int dy = -1; dy <= 1; ++dy) {
        const int sy = 2 * y + dy;
        if (sy < 0 || sy >= h) continue;
        for (int dx = -1; dx <= 1; ++dx) {
          const int sx = 2 * xo + dx;
          if (sx < 0 || sx >= w) continue;
          const float* src = x.data() + (static_cast<size_t>(sy) * w + sx) * c;
          for (int k = 0; k < c; ++k) dst[k] = std::max(dst[k], src[k]);
        }
      }
    }
  return out;
}

}  // namespace

bool is_timm_resnet_config(const nlohmann::json& j) {
  return j.is_object() && j.contains("architecture") && j["architecture"].is_string() &&
         family_of(j["architecture"].get<std::string>()) != nullptr;
}

TimmResNetConfig timm_resnet_config_from_json(const nlohmann::json& j, const std::string& where) {
  MMFUSE_CHECK(j.is_object(), bad_input, where + ": not a JSON object");
  const std::string arch = JsonFields(j, where).string("architecture", "");
  const Family* fam = family_of(arch);
  MMFUSE_CHECK(fam != nullptr, unsupported,
               where + ": architecture \"" + arch +
                   "\" is not a timm ResNet this build runs (resnet18/34/50/101/152, "
                   "wide_resnet50_2/101_2)");
  TimmResNetConfig c;
  c.architecture = arch;
  c.bottleneck = fam->bottleneck;
  c.layers = fam->layers;
  int base_width = fam->base_width;
  if (j.contains("model_args")) {
    const auto& args = j["model_args"];
    MMFUSE_CHECK(args.is_object(), bad_input, where + ": model_args is not an object");
    for (const auto& [key, value] : args.items()) {
      if (key == "layers") {
        MMFUSE_CHECK(value.is_array() && value.size() == 4, bad_input,
                     where + ": model_args.layers must list 4 block counts");
        for (size_t i = 0; i < 4; ++i) {
          MMFUSE_CHECK(value[i].is_number_integer() && value[i].get<int>() >= 1 && value[i].get<int>() <= 64,
                       bad_input, where + ": model_args.layers must be counts from 1 to 64");
          c.layers[i] = value[i].get<int>();
        }
      } else if (key == "base_width") {
        MMFUSE_CHECK(value.is_number_integer(), bad_input, where + ": model_args.base_width must be an integer");
        base_width = value.get<int>();
      } else if (key == "channels" || key == "stem_width" || key == "num_classes" ||
                 key == "global_pool" || key == "drop_rate" || key == "drop_path_rate") {
        // Widths come from the weights' shapes; the head and dropout are not used here.
      } else {
        throw_error(ErrorKind::unsupported,
                    where + ": model_args." + key + " is not supported (plain timm ResNets only)");
      }
    }
  }
  (void)base_width;  // the bottleneck width is read from the weights
  c.mean = {0.485f, 0.456f, 0.406f};  // timm's IMAGENET_DEFAULT_MEAN / STD
  c.std = {0.229f, 0.224f, 0.225f};
  if (j.contains("pretrained_cfg") && j["pretrained_cfg"].is_object()) {
    const auto& p = j["pretrained_cfg"];
    for (const char* key : {"mean", "std"}) {
      if (!p.contains(key)) continue;
      MMFUSE_CHECK(p[key].is_array() && p[key].size() == 3, bad_input,
                   where + ": pretrained_cfg." + key + " must list 3 numbers");
      for (size_t i = 0; i < 3; ++i) {
        MMFUSE_CHECK(p[key][i].is_number(), bad_input, where + ": pretrained_cfg." + key + " must list 3 numbers");
        (std::string(key) == "mean" ? c.mean : c.std)[i] = p[key][i].get<float>();
      }
    }
    for (float s : c.std) MMFUSE_CHECK(s > 0, bad_input, where + ": pretrained_cfg.std must be positive");
  }
  return c;
}

struct TimmResNet::Impl {
  TimmResNetConfig config;
  FoldedConv stem;
  std::array<std::vector<Block>, 4> stages;
  // Plans per (height, width, last stage): building one reorders the weights,
  // so they are kept, a bounded number at a time.
  static constexpr size_t kMaxPlans = 16;
  mutable std::mutex mutex;
  mutable std::map<std::array<int, 3>, std::shared_ptr<const Plan>> plans;

  std::shared_ptr<const Plan> plan_for(int h, int w, int last_stage) const;
};

std::shared_ptr<const Plan> TimmResNet::Impl::plan_for(int height, int width, int last_stage) const {
  const std::array<int, 3> key{height, width, last_stage};
  {
    std::lock_guard<std::mutex> lock(mutex);
    const auto it = plans.find(key);
    if (it != plans.end()) return it->second;
  }
  auto p = std::make_shared<Plan>();
  p->stem = plan(stem, height, width);
  p->scratch_bytes = p->stem.conv->scratchpad_bytes();
  int h = (p->stem.out_h + 2 - 3) / 2 + 1, w = (p->stem.out_w + 2 - 3) / 2 + 1;
  for (int s = 0; s <= last_stage; ++s) {
    std::vector<PlannedBlock> blocks;
    for (const Block& b : stages[s]) {
      PlannedBlock pb;
      int bh = h, bw = w;
      for (const FoldedConv& f : b.convs) {
        pb.convs.push_back(plan(f, bh, bw));
        bh = pb.convs.back().out_h;
        bw = pb.convs.back().out_w;
        p->scratch_bytes = std::max(p->scratch_bytes, pb.convs.back().conv->scratchpad_bytes());
      }
      if (b.downsample) {
        pb.downsample = plan(*b.downsample, h, w);
        p->scratch_bytes = std::max(p->scratch_bytes, pb.downsample->conv->scratchpad_bytes());
      }
      h = bh;
      w = bw;
      blocks.push_back(std::move(pb));
    }
    p->stages.push_back(std::move(blocks));
  }
  std::lock_guard<std::mutex> lock(mutex);
  if (plans.size() >= kMaxPlans) plans.erase(plans.begin());
  plans[key] = p;
  return p;
}

TimmResNet::TimmResNet() : impl_(std::make_unique<Impl>()) {}
TimmResNet::~TimmResNet() = default;

std::unique_ptr<TimmResNet> TimmResNet::open(const fs::path& dir) {
  std::error_code ec;
  MMFUSE_CHECK(fs::is_directory(dir, ec), not_found, dir.string() + ": model folder not found");
  const fs::path config_path = dir / "config.json";
  std::unique_ptr<TimmResNet> net(new TimmResNet());
  Impl& m = *net->impl_;
  m.config = timm_resnet_config_from_json(read_json_file(config_path), config_path.string());
  const auto store = WeightStore::open_folder(dir);
  const std::string where = (dir / "model.safetensors").string();
  m.stem = fold_conv(*store, "conv1", "bn1", 3, 2, true, where);
  int c = m.stem.out_c;
  for (int s = 0; s < 4; ++s) {
    for (int b = 0; b < m.config.layers[s]; ++b) {
      const std::string p = "layer" + std::to_string(s + 1) + "." + std::to_string(b) + ".";
      const int stride = (b == 0 && s > 0) ? 2 : 1;
      Block blk;
      if (m.config.bottleneck) {
        // timm puts the stride on the 3x3 convolution.
        blk.convs.push_back(fold_conv(*store, p + "conv1", p + "bn1", c, 1, true, where));
        blk.convs.push_back(fold_conv(*store, p + "conv2", p + "bn2", blk.convs.back().out_c, stride, true, where));
        blk.convs.push_back(fold_conv(*store, p + "conv3", p + "bn3", blk.convs.back().out_c, 1, false, where));
      } else {
        blk.convs.push_back(fold_conv(*store, p + "conv1", p + "bn1", c, stride, true, where));
        blk.convs.push_back(fold_conv(*store, p + "conv2", p + "bn2", blk.convs.back().out_c, 1, false, where));
      }
      const int out_c = blk.convs.back().out_c;
      if (store->has(p + "downsample.0.weight")) {
        blk.downsample = fold_conv(*store, p + "downsample.0", p + "downsample.1", c, stride, false, where);
        MMFUSE_CHECK(blk.downsample->out_c == out_c && blk.downsample->kernel == 1, bad_input,
                     where + ": " + p + "downsample does not match the block's output");
      } else {
        MMFUSE_CHECK(stride == 1 && c == out_c, bad_input,
                     where + ": " + p + "downsample is missing (the block changes shape)");
      }
      c = out_c;
      m.stages[s].push_back(std::move(blk));
    }
  }
  return net;
}

const TimmResNetConfig& TimmResNet::config() const { return impl_->config; }
int TimmResNet::stage_channels(int stage) const {
  MMFUSE_CHECK(stage >= 0 && stage < 4, bad_input, "timm resnet: stage must be 0..3");
  return impl_->stages[stage].back().convs.back().out_c;
}

std::vector<FeatureMap> TimmResNet::forward(const float* input, int height, int width,
                                            int last_stage) const {
  MMFUSE_CHECK(last_stage >= 0 && last_stage < 4, bad_input, "timm resnet: stage must be 0..3");
  MMFUSE_CHECK(height >= 32 && width >= 32 && height <= 8192 && width <= 8192, bad_input,
               "timm resnet: input size " + std::to_string(width) + "x" + std::to_string(height) +
                   " out of range (32..8192)");
  const std::shared_ptr<const Plan> p = impl_->plan_for(height, width, last_stage);
  const int previous_threads = omp_get_max_threads();
  omp_set_num_threads(1);
  struct Restore {
    int n;
    ~Restore() { omp_set_num_threads(n); }
  } restore{previous_threads};
  AlignedBuffer scratch(p->scratch_bytes);
  auto run = [&](const PlannedConv& f, const float* src) {
    std::vector<float> out(static_cast<size_t>(f.out_h) * f.out_w * f.out_c);
    f.conv->run(src, out.data(), scratch.data);
    return out;
  };
  std::vector<float> x = run(p->stem, input);
  int h = 0, w = 0, c = p->stem.out_c;
  x = max_pool_3x3_s2(x, p->stem.out_h, p->stem.out_w, c, h, w);
  std::vector<FeatureMap> out;
  for (int s = 0; s <= last_stage; ++s) {
    for (const PlannedBlock& blk : p->stages[s]) {
      std::vector<float> y = run(blk.convs[0], x.data());
      for (size_t i = 1; i < blk.convs.size(); ++i) y = run(blk.convs[i], y.data());
      const std::vector<float> shortcut = blk.downsample ? run(*blk.downsample, x.data()) : std::move(x);
      for (size_t i = 0; i < y.size(); ++i) y[i] = std::max(0.0f, y[i] + shortcut[i]);
      x = std::move(y);
      h = blk.convs.back().out_h;
      w = blk.convs.back().out_w;
      c = blk.convs.back().out_c;
    }
    out.push_back(FeatureMap{h, w, c, x});
  }
  return out;
}

std::vector<float> TimmResNet::normalise(const Image& image) const {
  MMFUSE_CHECK(image.width > 0 && image.height > 0 &&
                   image.rgb.size() == static_cast<size_t>(image.width) * image.height * 3,
               bad_input, "timm resnet: empty or malformed image");
  const TimmResNetConfig& c = impl_->config;
  std::vector<float> out(image.rgb.size());
  for (size_t i = 0; i < out.size(); ++i) {
    const int ch = static_cast<int>(i % 3);
    out[i] = (image.rgb[i] / 255.0f - c.mean[ch]) / c.std[ch];
  }
  return out;
}

}  // namespace mmfuse
