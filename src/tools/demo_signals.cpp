// Demo sound and sensor streams. Sound: a motor (rotation harmonics with
// per-device strengths, a gear-mesh tone, broadband noise, slow load
// modulation, small speed drift between recordings) with the faults of
// tools/fault_synth.h mixed in. Sensors at 10 Hz: temperature, vibration,
// current and pressure driven by a shared slowly varying load, quantised like
// real transmitters; faults are spikes, drifts and a frozen channel.
#include <algorithm>
#include <cmath>

#include "tools/demo.h"
#include "tools/demo_random.h"
#include "tools/fault_synth.h"

namespace mmfuse::inspect {

namespace {

double quantise(double v, double step) {
  return std::round(v / step) * step;
}

}  // namespace

const std::vector<std::string> kDemoSensorChannels = {"temperature_c", "vibration_mm_s",
                                                      "current_a", "pressure_bar"};

std::vector<float> render_sound(uint64_t device_seed, Scenario scenario, std::mt19937_64& rng,
                                double seconds, int rate) {
  std::mt19937_64 fixed(device_seed * 31 + 5);
  const double f0 = uni(fixed, 24.0, 50.0);  // rotation, Hz
  double amp[10];
  for (double& a : amp) a = uni(fixed, 0.02, 0.25);
  const double mesh = f0 * static_cast<double>(12 + fixed() % 20);
  const double mesh_amp = uni(fixed, 0.02, 0.08);
  const double noise_amp = uni(fixed, 0.04, 0.1);
  const double speed = 1.0 + uni(rng, -0.01, 0.01);
  const double am_rate = uni(rng, 0.3, 1.0);
  double phase[11];
  for (double& p : phase) p = uni(rng, 0, 2 * M_PI);
  const size_t n = static_cast<size_t>(seconds * rate);
  std::vector<float> x(n);
  // Harmonics by rotating phasors (one complex multiply per sample each).
  double re[11], im[11], cr[11], ci[11], a[11];
  for (int k = 0; k < 11; ++k) {
    const double f = k < 10 ? f0 * speed * (k + 1) : mesh * speed;
    const double w = 2 * M_PI * f / rate;
    re[k] = std::cos(phase[k]);
    im[k] = std::sin(phase[k]);
    cr[k] = std::cos(w);
    ci[k] = std::sin(w);
    a[k] = k < 10 ? amp[k] : mesh_amp;
  }
  const double am_w = 2 * M_PI * am_rate / rate;
  double lp = 0.0;  // one-pole low-pass: machine noise is not white
  for (size_t i = 0; i < n; ++i) {
    double v = 0.0;
    for (int k = 0; k < 11; ++k) {
      v += a[k] * im[k];
      const double nr = re[k] * cr[k] - im[k] * ci[k];
      im[k] = re[k] * ci[k] + im[k] * cr[k];
      re[k] = nr;
    }
    if ((i & 4095) == 0)  // renormalise the phasors against rounding drift
      for (int k = 0; k < 11; ++k) {
        const double m = 1.0 / std::hypot(re[k], im[k]);
        re[k] *= m;
        im[k] *= m;
      }
    lp = 0.85 * lp + 0.15 * gauss(rng);
    v += noise_amp * (lp * 2.5 + 0.3 * gauss(rng));
    x[i] = static_cast<float>(0.5 * v * (1.0 + 0.08 * std::sin(am_w * static_cast<double>(i))));
  }
  const uint32_t fs = static_cast<uint32_t>(rng());
  if (scenario == Scenario::knock) x = inject_fault(x, rate, SyntheticFault::clicks, fs);
  if (scenario == Scenario::squeal || scenario == Scenario::hot_bearing)
    x = inject_fault(x, rate, SyntheticFault::tone, fs);
  float peak = 0.0f;
  for (float v : x) peak = std::max(peak, std::fabs(v));
  if (peak > 0.95f)
    for (float& v : x) v *= 0.95f / peak;
  return x;
}

sensor::Matrix render_sensors(uint64_t device_seed, Scenario scenario, std::mt19937_64& rng,
                              size_t rows) {
  std::mt19937_64 fixed(device_seed * 131 + 9);
  const double t0 = uni(fixed, 40, 60), v0 = uni(fixed, 1.2, 3.0), i0 = uni(fixed, 8, 30),
               p0 = uni(fixed, 2.0, 6.0);
  sensor::Matrix m(rows, 4);
  double load = gauss(rng) * 0.5, temp_lag = 0.0;
  for (size_t r = 0; r < rows; ++r) {
    load = 0.98 * load + 0.2 * gauss(rng);     // process load (5 s time constant), unit variance
    temp_lag = 0.99 * temp_lag + 0.01 * load;  // temperature follows load with a lag
    m(r, 0) = t0 + 4.0 * temp_lag + 0.08 * gauss(rng);
    m(r, 1) = std::fabs(v0 + 0.25 * load + 0.12 * gauss(rng));
    m(r, 2) = i0 + 1.5 * load + 0.15 * gauss(rng);
    m(r, 3) = p0 - 0.08 * load + 0.015 * gauss(rng);
  }
  const size_t begin = rows / 4 + static_cast<size_t>(uni(rng, 0, static_cast<double>(rows) / 4));
  switch (scenario) {
    case Scenario::knock:  // vibration spikes: impacts
      for (int k = 0; k < 10; ++k) {
        const size_t at =
            begin + static_cast<size_t>(uni(rng, 0, static_cast<double>(rows - begin - 5)));
        for (size_t j = 0; j < 4; ++j) m(at + j, 1) += uni(rng, 1.5, 3.0);
      }
      break;
    case Scenario::squeal:  // current bursts: belt slipping
      for (int k = 0; k < 8; ++k) {
        const size_t at =
            begin + static_cast<size_t>(uni(rng, 0, static_cast<double>(rows - begin - 8)));
        for (size_t j = 0; j < 8; ++j) m(at + j, 2) += uni(rng, 3.0, 5.0);
      }
      break;
    case Scenario::hot_bearing:
    case Scenario::overheating: {  // temperature drifts up, unexplained by load
      const double rise = uni(rng, 8.0, 14.0);
      for (size_t r = begin; r < rows; ++r)
        m(r, 0) += rise * static_cast<double>(r - begin) / (rows - begin);
      break;
    }
    case Scenario::oil_leak: {  // pressure falls
      const double fall = uni(rng, 0.15, 0.3);
      for (size_t r = begin; r < rows; ++r)
        m(r, 3) -= fall * static_cast<double>(r - begin) / (rows - begin);
      break;
    }
    case Scenario::stuck_sensor: {  // a transmitter freezes at its last value
      const size_t c = static_cast<size_t>(rng() % 4);
      for (size_t r = begin + 1; r < rows; ++r) m(r, c) = m(begin, c);
      break;
    }
    default: break;
  }
  for (size_t r = 0; r < rows; ++r) {
    m(r, 0) = quantise(m(r, 0), 0.01);
    m(r, 1) = quantise(m(r, 1), 0.01);
    m(r, 2) = quantise(m(r, 2), 0.01);
    m(r, 3) = quantise(m(r, 3), 0.001);
  }
  return m;
}

}  // namespace mmfuse::inspect
