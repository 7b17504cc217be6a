// Silence removal by short-time energy. A frame is "silent" when its mean
// square is more than threshold_db below that of the loudest frame (relative,
// so it works at any recording level). Leading and trailing silence is cut;
// with `interior` also every silent run inside the clip of at least
// min_gap_s seconds (the chapter's "去除静音片段"), keeping what is left in order.
#pragma once

#include <cstddef>
#include <vector>

namespace mmfuse {

struct TrimOptions {
  bool enabled = true;
  double frame_s = 0.025;      // energy frame length (25 ms: 400 samples at 16 kHz)
  double hop_s = 0.010;        // energy frame hop (10 ms: 160 samples at 16 kHz)
  double threshold_db = 40.0;  // silent: mean square < loudest frame's - threshold_db
  double min_keep_s = 0.5;     // never keep less: the kept span grows around its centre
  bool interior = false;       // also remove silent runs inside the clip
  double min_gap_s = 0.3;      // shortest interior run removed
};

// The kept sample ranges [begin, end), in order. A clip shorter than one frame,
// or digital silence, is kept whole.
std::vector<std::pair<size_t, size_t>> non_silent_ranges(const std::vector<float>& samples,
                                                         int sample_rate, const TrimOptions& opt);

// Applies non_silent_ranges: returns the kept samples concatenated.
std::vector<float> trim_silence(const std::vector<float>& samples, int sample_rate,
                                const TrimOptions& opt);

}  // namespace mmfuse
