// Demo camera and infrared frames: a motor-pump set on a base plate (body with
// cooling fins, end cap, pump, pipes, gauge, nameplate, bolts), rendered from
// a per-device layout. Photos vary pose (shift, small rotation), light (gain,
// offset, gradient) and sensor noise; defects are painted onto the scene
// before the camera "takes" it, so they move and relight with it.
#include <algorithm>
#include <cmath>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "mmfuse/error.h"
#include "tools/demo.h"
#include "tools/demo_random.h"

namespace mmfuse::inspect {

namespace {

// Layout in units of the frame width/height, fixed per device.
struct Layout {
  double bx, by, bw, bh;  // motor body
  double px, py, pr;      // pump centre and radius
  double plate_y;         // base plate top
  cv::Scalar body, pump, wall;
  double fin_step;
  int bolts;
  double bolt_r;
  double gauge_x, gauge_y, gauge_r;
  int id;
};

Layout make_layout(uint64_t device_seed) {
  std::mt19937_64 r(device_seed * 0x9E3779B97F4A7C15ULL + 17);
  Layout l{};
  l.bx = uni(r, 0.12, 0.2);
  l.bw = uni(r, 0.36, 0.44);
  l.by = uni(r, 0.34, 0.42);
  l.bh = uni(r, 0.2, 0.26);
  l.pr = uni(r, 0.075, 0.095);
  l.px = l.bx + l.bw + l.pr * 0.9 + 0.03;
  l.py = l.by + l.bh * 0.55;
  l.plate_y = l.by + l.bh + 0.02;
  const cv::Scalar bodies[] = {
      {40, 80, 150}, {60, 120, 70}, {120, 120, 125}, {150, 60, 50}, {50, 110, 130}};
  l.body = bodies[r() % 5];
  l.pump = cv::Scalar(uni(r, 90, 160), uni(r, 90, 160), uni(r, 90, 160));
  const double w = uni(r, 120, 175);
  l.wall = cv::Scalar(w, w * uni(r, 0.95, 1.05), w * uni(r, 0.9, 1.0));
  l.fin_step = uni(r, 0.012, 0.018);
  l.bolts = 4 + static_cast<int>(r() % 3);
  l.bolt_r = 0.011;
  l.gauge_x = l.px + uni(r, -0.02, 0.04);
  l.gauge_y = l.by - uni(r, 0.1, 0.16);
  l.gauge_r = uni(r, 0.022, 0.03);
  l.id = static_cast<int>(device_seed % 1000);
  return l;
}

// Which part a missing_part scenario leaves out: 0..bolts-1 a bolt, bolts = gauge, bolts+1 =
// nameplate.
void render_scene(cv::Mat& img, const Layout& l, int skip, uint64_t device_seed) {
  const int W = img.cols, H = img.rows;
  auto X = [&](double v) { return static_cast<int>(std::lround(v * W)); };
  auto Y = [&](double v) { return static_cast<int>(std::lround(v * H)); };
  const int t = std::max(1, W / 320);  // line thickness unit
  // Wall with a gentle vertical shade and a fixed texture (part of the scene).
  for (int y = 0; y < H; ++y) {
    const double shade = 1.0 - 0.15 * y / H;
    img.row(y).setTo(l.wall * shade);
  }
  {
    cv::Mat tex(std::max(2, H / 16), std::max(2, W / 16), CV_32F);
    std::mt19937_64 r(device_seed + 99);
    for (int i = 0; i < static_cast<int>(tex.total()); ++i)
      tex.at<float>(i) = static_cast<float>(gauss(r) * 6.0);
    cv::Mat up;
    cv::resize(tex, up, img.size(), 0, 0, cv::INTER_CUBIC);
    cv::Mat up3;
    cv::merge(std::vector<cv::Mat>{up, up, up}, up3);
    cv::Mat f;
    img.convertTo(f, CV_32FC3);
    f += up3;
    f.convertTo(img, CV_8UC3);
  }
  // Floor and base plate.
  cv::rectangle(img, cv::Rect(0, Y(0.82), W, H - Y(0.82)), cv::Scalar(85, 85, 80), cv::FILLED);
  const int plate_x0 = X(l.bx - 0.04), plate_x1 = X(l.px + l.pr + 0.04);
  cv::rectangle(img, cv::Rect(plate_x0, Y(l.plate_y), plate_x1 - plate_x0, Y(0.07)),
                cv::Scalar(55, 58, 60), cv::FILLED);
  // Motor feet, body with fins, end cap, shaft.
  cv::rectangle(img,
                cv::Rect(X(l.bx + 0.03), Y(l.by + l.bh), X(0.05), Y(l.plate_y - l.by - l.bh) + 1),
                l.body * 0.6, cv::FILLED);
  cv::rectangle(
      img, cv::Rect(X(l.bx + l.bw - 0.08), Y(l.by + l.bh), X(0.05), Y(l.plate_y - l.by - l.bh) + 1),
      l.body * 0.6, cv::FILLED);
  cv::rectangle(img, cv::Rect(X(l.bx), Y(l.by), X(l.bw), Y(l.bh)), l.body, cv::FILLED);
  for (double y = l.by + l.fin_step; y < l.by + l.bh - 0.005; y += l.fin_step)
    cv::line(img, cv::Point(X(l.bx + 0.01), Y(y)), cv::Point(X(l.bx + l.bw - 0.06), Y(y)),
             l.body * 0.7, t);
  cv::ellipse(img, cv::Point(X(l.bx), Y(l.by + l.bh / 2)), cv::Size(X(0.025), Y(l.bh / 2)), 0, 90,
              270, l.body * 0.8, cv::FILLED);
  cv::rectangle(
      img, cv::Rect(X(l.bx + l.bw), Y(l.py - 0.015), X(l.px - l.bx - l.bw - l.pr * 0.8), Y(0.03)),
      cv::Scalar(170, 170, 175), cv::FILLED);
  // Pump, pipes.
  cv::circle(img, cv::Point(X(l.px), Y(l.py)), X(l.pr), l.pump, cv::FILLED);
  cv::circle(img, cv::Point(X(l.px), Y(l.py)), X(l.pr * 0.45), l.pump * 0.75, cv::FILLED);
  cv::line(img, cv::Point(X(l.px), Y(l.py) - X(l.pr)), cv::Point(X(l.px), Y(l.gauge_y)),
           cv::Scalar(150, 150, 150), X(0.03));
  cv::line(img, cv::Point(X(l.px), Y(l.gauge_y)), cv::Point(W, Y(l.gauge_y)),
           cv::Scalar(150, 150, 150), X(0.03));
  cv::line(img, cv::Point(X(l.px) + X(l.pr), Y(l.py)), cv::Point(W, Y(l.py)),
           cv::Scalar(140, 140, 145), X(0.025));
  // Gauge.
  if (skip != l.bolts) {
    cv::circle(img, cv::Point(X(l.gauge_x), Y(l.gauge_y) - X(0.04)), X(l.gauge_r),
               cv::Scalar(235, 235, 230), cv::FILLED);
    cv::circle(img, cv::Point(X(l.gauge_x), Y(l.gauge_y) - X(0.04)), X(l.gauge_r),
               cv::Scalar(30, 30, 30), t);
    cv::line(img, cv::Point(X(l.gauge_x), Y(l.gauge_y) - X(0.04)),
             cv::Point(X(l.gauge_x + l.gauge_r * 0.7), Y(l.gauge_y) - X(0.04 + l.gauge_r * 0.5)),
             cv::Scalar(200, 20, 20), t);
  }
  // Nameplate.
  if (skip != l.bolts + 1) {
    const cv::Rect plate(X(l.bx + l.bw * 0.3), Y(l.by + l.bh * 0.3), X(0.1), Y(0.07));
    cv::rectangle(img, plate, cv::Scalar(225, 225, 215), cv::FILLED);
    cv::putText(img, "M-" + std::to_string(l.id),
                cv::Point(plate.x + t * 3, plate.y + plate.height * 2 / 3),
                cv::FONT_HERSHEY_SIMPLEX, W / 1600.0, cv::Scalar(20, 20, 20), t);
  }
  // Bolts on the plate.
  for (int b = 0; b < l.bolts; ++b) {
    if (b == skip) continue;
    const double x = l.bx - 0.02 + (l.px + l.pr + 0.02 - (l.bx - 0.02)) * b / (l.bolts - 1);
    cv::circle(img, cv::Point(X(x), Y(l.plate_y + 0.035)), X(l.bolt_r), cv::Scalar(200, 200, 205),
               cv::FILLED);
    cv::circle(img, cv::Point(X(x), Y(l.plate_y + 0.035)), X(l.bolt_r * 0.45),
               cv::Scalar(120, 120, 125), cv::FILLED);
  }
}

void paint_scratch(cv::Mat& img, const Layout& l, std::mt19937_64& r) {
  const int W = img.cols, H = img.rows;
  double x = uni(r, l.bx + 0.05, l.bx + l.bw - 0.15) * W,
         y = uni(r, l.by + 0.03, l.by + l.bh - 0.03) * H;
  const double length = uni(r, 0.07, 0.16) * W;
  const int segments = 2 + static_cast<int>(r() % 2);
  double angle = uni(r, -0.6, 0.6);
  const double lift = uni(r, 55, 95);
  const int thick = std::max(2, W / 320);
  for (int s = 0; s < segments; ++s) {
    const double len = length / segments;
    const double nx = x + len * std::cos(angle), ny = y + len * std::sin(angle);
    cv::line(img, cv::Point(static_cast<int>(x), static_cast<int>(y)),
             cv::Point(static_cast<int>(nx), static_cast<int>(ny)),
             l.body + cv::Scalar(lift, lift, lift), thick, cv::LINE_AA);
    x = nx;
    y = std::clamp(ny, (l.by + 0.02) * H, (l.by + l.bh - 0.02) * H);
    angle += uni(r, -0.35, 0.35);
  }
}

void paint_oil_leak(cv::Mat& img, const Layout& l, std::mt19937_64& r) {
  const int W = img.cols, H = img.rows;
  cv::Mat mask(img.size(), CV_32F, cv::Scalar(0));
  const double cx = uni(r, l.bx + 0.1, l.px) * W, cy = (l.plate_y + uni(r, 0.0, 0.05)) * H;
  const double size = uni(r, 0.035, 0.07) * W;
  for (int k = 0; k < 5; ++k)
    cv::ellipse(mask,
                cv::Point(static_cast<int>(cx + uni(r, -0.5, 0.5) * size),
                          static_cast<int>(cy + uni(r, -0.25, 0.25) * size)),
                cv::Size(static_cast<int>(size * uni(r, 0.35, 0.7)),
                         static_cast<int>(size * uni(r, 0.15, 0.35))),
                uni(r, 0, 180), 0, 360, cv::Scalar(1.0), cv::FILLED);
  // Drip trail from the body above.
  cv::line(mask, cv::Point(static_cast<int>(cx), static_cast<int>((l.by + l.bh * 0.7) * H)),
           cv::Point(static_cast<int>(cx), static_cast<int>(cy)), cv::Scalar(1.0),
           std::max(2, W / 200));
  cv::GaussianBlur(mask, mask, cv::Size(0, 0), std::max(1.0, W / 400.0));
  const double dark = uni(r, 0.4, 0.6);
  for (int y = 0; y < img.rows; ++y) {
    const float* m = mask.ptr<float>(y);
    cv::Vec3b* p = img.ptr<cv::Vec3b>(y);
    for (int x = 0; x < img.cols; ++x) {
      if (m[x] <= 0.0f) continue;
      const double f = 1.0 - dark * m[x];
      // Oil: darker, slightly brown.
      p[x] = cv::Vec3b(cv::saturate_cast<uint8_t>(p[x][0] * f + 8 * m[x]),
                       cv::saturate_cast<uint8_t>(p[x][1] * f),
                       cv::saturate_cast<uint8_t>(p[x][2] * f));
    }
  }
}

}  // namespace

Image render_camera(uint64_t device_seed, Scenario scenario, bool golden, std::mt19937_64& rng,
                    int width, int height) {
  const Layout l = make_layout(device_seed);
  int skip = -1;
  if (scenario == Scenario::missing_part)
    skip = static_cast<int>(rng() % static_cast<uint64_t>(l.bolts + 2));
  cv::Mat scene(height, width, CV_8UC3);
  render_scene(scene, l, skip, device_seed);
  if (scenario == Scenario::scratch) paint_scratch(scene, l, rng);
  if (scenario == Scenario::oil_leak) paint_oil_leak(scene, l, rng);

  cv::Mat photo;
  double noise = 1.5;
  if (golden) {
    photo = scene;
  } else {
    // Pose: the robot stops within a few pixels and a fraction of a degree.
    const double s = width / 640.0;
    const double dx = uni(rng, -8, 8) * s, dy = uni(rng, -6, 6) * s, angle = uni(rng, -0.25, 0.25);
    cv::Mat m = cv::getRotationMatrix2D(cv::Point2f(width / 2.0f, height / 2.0f), angle, 1.0);
    m.at<double>(0, 2) += dx;
    m.at<double>(1, 2) += dy;
    cv::warpAffine(scene, photo, m, scene.size(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
    // Light: gain, offset and a linear gradient (lamp position, daylight).
    const double gain = uni(rng, 0.75, 1.25), offset = uni(rng, -15, 15);
    const double gx = uni(rng, -20, 20), gy = uni(rng, -20, 20);
    noise = uni(rng, 1.5, 4.0);
    cv::Mat f;
    photo.convertTo(f, CV_32FC3);
    for (int y = 0; y < height; ++y) {
      cv::Vec3f* p = f.ptr<cv::Vec3f>(y);
      const double yy = 2.0 * y / (height - 1) - 1.0;
      for (int x = 0; x < width; ++x) {
        const double add = offset + gx * (2.0 * x / (width - 1) - 1.0) + gy * yy;
        p[x] = p[x] * static_cast<float>(gain) + cv::Vec3f::all(static_cast<float>(add));
      }
    }
    f.convertTo(photo, CV_8UC3);
  }
  // Sensor noise (per channel).
  cv::Mat f;
  photo.convertTo(f, CV_32FC3);
  cv::Mat n(f.size(), CV_32FC3);
  float* np = n.ptr<float>(0);
  for (size_t i = 0; i < n.total() * 3; ++i) np[i] = static_cast<float>(gauss(rng) * noise);
  f += n;
  f.convertTo(photo, CV_8UC3);
  Image out;
  out.width = width;
  out.height = height;
  out.rgb.assign(photo.data, photo.data + photo.total() * 3);
  return out;
}

std::vector<float> render_infrared_c(uint64_t device_seed, Scenario scenario, std::mt19937_64& rng,
                                     int width, int height) {
  const Layout l = make_layout(device_seed);
  std::mt19937_64 fixed(device_seed + 7);
  const double ambient = uni(fixed, 20, 28);
  const double body = uni(fixed, 36, 50);
  // A few normal machines run warm: the hot threshold has to be set with care.
  const double bearing = uni(fixed, 0, 1) < 0.15 ? uni(fixed, 62, 72) : uni(fixed, 42, 58);
  cv::Mat t(height, width, CV_32F, cv::Scalar(ambient));
  for (int y = 0; y < height; ++y) t.row(y) += 2.0 * y / height;
  cv::Mat body_mask(t.size(), CV_32F, cv::Scalar(0));
  auto X = [&](double v) { return static_cast<int>(std::lround(v * width)); };
  auto Y = [&](double v) { return static_cast<int>(std::lround(v * height)); };
  cv::rectangle(body_mask, cv::Rect(X(l.bx), Y(l.by), X(l.bw), Y(l.bh)), cv::Scalar(1.0),
                cv::FILLED);
  cv::circle(body_mask, cv::Point(X(l.px), Y(l.py)), X(l.pr), cv::Scalar(0.5), cv::FILLED);
  cv::GaussianBlur(body_mask, body_mask, cv::Size(0, 0), width / 120.0);
  t += body_mask * (body - ambient + uni(rng, -1.5, 1.5));
  auto hot_spot = [&](double cx, double cy, double radius, double peak) {
    const int reach = static_cast<int>(4 * radius) + 1;
    for (int y = std::max(0, static_cast<int>(cy) - reach);
         y < std::min(height, static_cast<int>(cy) + reach); ++y) {
      float* p = t.ptr<float>(y);
      for (int x = std::max(0, static_cast<int>(cx) - reach);
           x < std::min(width, static_cast<int>(cx) + reach); ++x) {
        const double d2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
        const double v = (peak - p[x]) * std::exp(-d2 / (2 * radius * radius));
        if (v > 0) p[x] += static_cast<float>(v);
      }
    }
  };
  const double r = width * 0.018;
  const cv::Point2d b1(X(l.bx + 0.02), Y(l.py)), b2(X(l.bx + l.bw - 0.02), Y(l.py));
  hot_spot(b1.x, b1.y, r, bearing + uni(rng, -1.0, 1.0));
  hot_spot(b2.x, b2.y, r, bearing + uni(rng, -1.0, 1.0));
  if (scenario == Scenario::hot_bearing) {
    const cv::Point2d b = rng() % 2 ? b1 : b2;
    hot_spot(b.x, b.y, width * uni(rng, 0.015, 0.025), uni(rng, 88, 115));
  }
  if (scenario == Scenario::overheating)
    hot_spot(X(l.bx + l.bw * uni(rng, 0.3, 0.7)), Y(l.by + l.bh / 2), width * uni(rng, 0.05, 0.08),
             uni(rng, 84, 96));
  std::vector<float> out(static_cast<size_t>(width) * height);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      out[static_cast<size_t>(y) * width + x] =
          t.at<float>(y, x) + static_cast<float>(0.3 * gauss(rng));
  return out;
}

}  // namespace mmfuse::inspect
