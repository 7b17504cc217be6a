// Synthetic machine faults mixed into normal recordings, for evaluating the
// unsupervised detectors where labelled anomalies are scarce (the shared DCASE
// sample has 3). Levels are relative to the clip's own RMS so that they mean
// the same on loud and quiet machines:
//   tone        whine: a sine at 1-6 kHz, RMS 0.3 x clip RMS (-10.5 dB)
//   clicks      bearing/impact defect: 10 ms bursts of a 2-5 kHz resonance
//               (decay 2 ms, peak 3 x clip RMS) repeating at 5-30 Hz
//   noise       hiss/leak: white noise, RMS 0.3 x clip RMS
//   modulation  imbalance/rub: amplitude modulation, depth 50 %, 2-10 Hz
// The random parameters come from `seed` (deterministic on one platform).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mmfuse {

enum class SyntheticFault { tone, clicks, noise, modulation };

const char* to_string(SyntheticFault fault);
const std::vector<SyntheticFault>& all_synthetic_faults();

std::vector<float> inject_fault(const std::vector<float>& x, int sample_rate, SyntheticFault fault,
                                uint32_t seed);

}  // namespace mmfuse
