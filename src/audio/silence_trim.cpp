#include "audio/silence_trim.h"

#include <algorithm>
#include <cmath>

namespace mmfuse {

std::vector<std::pair<size_t, size_t>> non_silent_ranges(const std::vector<float>& samples,
                                                         int sample_rate, const TrimOptions& opt) {
  const size_t n = samples.size();
  const size_t frame =
      std::max<size_t>(1, static_cast<size_t>(std::lround(opt.frame_s * sample_rate)));
  const size_t hop = std::max<size_t>(1, static_cast<size_t>(std::lround(opt.hop_s * sample_rate)));
  if (!opt.enabled || n <= frame) return {{0, n}};

  const size_t frames = 1 + (n - frame) / hop;
  std::vector<double> energy(frames);
  double loudest = 0.0;
  for (size_t f = 0; f < frames; ++f) {
    double sum = 0.0;
    const float* x = samples.data() + f * hop;
    for (size_t i = 0; i < frame; ++i) sum += static_cast<double>(x[i]) * x[i];
    energy[f] = sum / static_cast<double>(frame);
    loudest = std::max(loudest, energy[f]);
  }
  if (loudest <= 0.0) return {{0, n}};
  const double floor = loudest * std::pow(10.0, -opt.threshold_db / 10.0);

  // Loud frames -> sample ranges (a loud frame keeps all its samples), merged.
  std::vector<std::pair<size_t, size_t>> loud;
  for (size_t f = 0; f < frames; ++f) {
    if (energy[f] < floor) continue;
    // The last frame also owns the tail that no full frame covers.
    const size_t begin = f * hop, end = f + 1 == frames ? n : std::min(n, f * hop + frame);
    if (!loud.empty() && begin <= loud.back().second) {
      loud.back().second = std::max(loud.back().second, end);
    } else {
      loud.emplace_back(begin, end);
    }
  }

  std::vector<std::pair<size_t, size_t>> kept;
  if (!opt.interior) {
    kept.emplace_back(loud.front().first, loud.back().second);
  } else {
    // Gaps shorter than min_gap_s stay (pauses inside a sound are part of it).
    const size_t min_gap = static_cast<size_t>(std::lround(opt.min_gap_s * sample_rate));
    for (const auto& r : loud) {
      if (!kept.empty() && r.first - kept.back().second < min_gap) {
        kept.back().second = r.second;
      } else {
        kept.push_back(r);
      }
    }
  }

  size_t total = 0;
  for (const auto& r : kept) total += r.second - r.first;
  const size_t min_keep =
      std::min(n, static_cast<size_t>(std::lround(opt.min_keep_s * sample_rate)));
  if (total < min_keep) {
    // Too little left to describe the sound: keep min_keep samples centred on
    // the kept material, shifted inside the clip.
    const size_t centre = (kept.front().first + kept.back().second) / 2;
    size_t begin = centre >= min_keep / 2 ? centre - min_keep / 2 : 0;
    begin = std::min(begin, n - min_keep);
    kept.assign(1, {begin, begin + min_keep});
  }
  return kept;
}

std::vector<float> trim_silence(const std::vector<float>& samples, int sample_rate,
                                const TrimOptions& opt) {
  std::vector<float> out;
  for (const auto& [begin, end] : non_silent_ranges(samples, sample_rate, opt))
    out.insert(out.end(), samples.begin() + static_cast<long>(begin),
               samples.begin() + static_cast<long>(end));
  return out;
}

}  // namespace mmfuse
